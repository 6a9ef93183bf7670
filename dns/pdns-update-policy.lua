-- SPDX-License-Identifier: Apache-2.0
-- PowerDNS lua-dnsupdate-policy-script for the nodes' zones (docs/https.md):
-- an RFC 2136 update is allowed only when signed with the TSIG key named
-- like the zone (uritoken-pdns-zone makes one per node), and only for the
-- TXT records of _acme-challenge.<zone>. So a node's key writes its own
-- DNS-01 challenge and nothing else: not another node's zone, not the
-- A/AAAA records, not another name in its own zone. (With this script
-- set, PowerDNS ignores allow-dnsupdate-from and TSIG-ALLOW-DNSUPDATE.)
function updatepolicy(q)
  local zone = q:getZoneName():toString()
  return q:getTsigName():toString() == zone
    and q:getQName():toString() == "_acme-challenge." .. zone
    and (q:getQType() == pdns.TXT or q:getQType() == pdns.ANY)
end
