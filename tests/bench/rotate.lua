-- wrk script of the throughput benchmarks (run.sh, sharing_cost.sh): one
-- request per line of $URITOKEN_TOKENS, in turn, for the 1 KiB file.
-- $URITOKEN_MODE: "plain" (no token), "padded" (a plain request exactly
-- as long as the tokenized one: the token goes into a query string that
-- httpd ignores for a static file), anything else tokenized. All modes go
-- through the same request() so that wrk spends the same CPU per request.
local paths = {}
local i = 0
function init(args)
  local mode = os.getenv("URITOKEN_MODE")
  for line in io.lines(os.getenv("URITOKEN_TOKENS")) do
    if mode == "plain" then
      paths[#paths + 1] = "/bench/1k.bin"
    elseif mode == "padded" then
      paths[#paths + 1] = "/bench/1k.bin?" .. line .. "xxxxx"
    else
      paths[#paths + 1] = "/_uk_" .. line .. "/bench/1k.bin"
    end
  end
end
function request()
  i = i + 1
  if i > #paths then i = 1 end
  return wrk.format("GET", paths[i])
end
