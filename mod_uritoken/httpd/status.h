// The status page handler (SetHandler uritoken-status); see status.cc.
#pragma once

#include <httpd.h>

#include "../core/usage.h"

namespace uritoken::httpd {

int handle_status(request_rec* r);

// This generation's usage counters (mod_uritoken.cc), or nullptr.
const UsageTable* usage_table();
// 32 random bytes of this generation that sign the page's form tokens.
const unsigned char* csrf_key();

}  // namespace uritoken::httpd
