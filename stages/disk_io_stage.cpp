#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "stages/context.hpp"
#include "stages/file_pages.hpp"
#include "stages/http/date.hpp"
#include "stages/http/mime.hpp"
#include "stages/stages.hpp"

namespace weir {
namespace {

/// Reads the whole file (small files only). False on a short or failed read.
bool read_all(int fd, std::string& out, std::size_t size) {
  out.resize(size);
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pread(fd, out.data() + done, size - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

std::shared_ptr<file_entry> build_entry(const server_context& ctx, std::string_view path) {
  auto e = std::make_shared<file_entry>();
  file_resolver::result r = ctx.resolver.resolve(path);
  e->status = r.status;
  e->st = r.st;
  if (r.status != 200) return e;
  e->mtime = r.st.st_mtim.tv_sec;
  // nginx-style validator: hex mtime and size; changes whenever either does.
  char etag[64];
  const int n =
      std::snprintf(etag, sizeof etag, "\"%llx-%llx\"", static_cast<unsigned long long>(e->mtime),
                    static_cast<unsigned long long>(r.st.st_size));
  e->etag.assign(etag, static_cast<std::size_t>(n));
  char last_modified[http::http_date_length];
  http::format_http_date(e->mtime, last_modified);
  e->fixed_fields.reserve(160);
  e->fixed_fields.append("Content-Type: ").append(http::content_type_for(r.file_name));
  e->fixed_fields.append("\r\nLast-Modified: ").append(last_modified, sizeof last_modified);
  e->fixed_fields.append("\r\nETag: ").append(e->etag);
  e->fixed_fields.append("\r\nAccept-Ranges: bytes\r\n");
  const auto size = static_cast<std::size_t>(r.st.st_size);
  if (size <= ctx.live.cache_max_file_bytes.load(std::memory_order_relaxed)) {
    const bool ok = read_all(r.fd, e->body, size);
    ::close(r.fd);
    if (!ok) e->status = 500;
  } else {
    e->fd = r.fd;  // kept open for sendfile; closed when the entry goes
  }
  return e;
}

}  // namespace

runtime::stage_index disk_io_stage::handle(runtime::task& t) {
  auto& c = static_cast<connection&>(t);
  if (const std::int64_t fault = ctx_.fault_disk_latency_us.load(std::memory_order_relaxed))
    std::this_thread::sleep_for(std::chrono::microseconds(fault));  // a slow disk, on purpose
  exchange& x = c.ex();
  if (x.pages == exchange::file_pages::read_in) {
    // The send stage's next turn of a large file, not in memory: read in here, then sent.
    read_into_page_cache(c.file_fd, c.file_off, c.file_left);
    x.pages = exchange::file_pages::resident;
    return stage_send;
  }
  const std::int64_t now = server_context::now_ms();
  // A cached entry due for revalidation that still names the same file is simply kept.
  if (x.entry && x.entry->status == 200 && ctx_.resolver.unchanged(x.path, x.entry->st)) {
    prepare_file_response(c, *x.entry);
    return stage_send;
  }
  std::shared_ptr<file_entry> e = build_entry(ctx_, x.path);
  e->checked_ms.store(now, std::memory_order_relaxed);
  // Errors that may pass (a transient 500/503) are not remembered.
  if (e->status != 500 && e->status != 503) ctx_.cache.insert(x.path, e, e->charge());
  x.entry = std::move(e);
  prepare_file_response(c, *x.entry);
  return stage_send;
}

}  // namespace weir
