// The status page handler (SetHandler uritoken-status); see status.cc.
#pragma once

#include <httpd.h>

namespace uritoken::httpd {

int handle_status(request_rec* r);

}  // namespace uritoken::httpd
