#include "stages/sample_site.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <string_view>
#include <system_error>
#include <vector>

namespace weir {

namespace {

constexpr std::string_view index_html = R"html(<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Welcome to weir</title>
  <link rel="stylesheet" href="/style.css">
</head>
<body>
<main>
  <h1>Welcome to weir</h1>
  <p>If you can read this, weir is running and serving HTTP/1.1. This is its built-in sample
  site: weir wrote it to a private temporary directory because no document root was given, and
  removes it again when it exits.</p>

  <h2>Serve your own files</h2>
  <p>Point weir at a directory:</p>
  <pre>weir --root /srv/www --listen 0.0.0.0:8080</pre>
  <p>or put the settings in a config file (<code>deploy/weir.yaml</code> documents every key and
  its default) and check it before you (re)start:</p>
  <pre>weir --config /etc/weir/weir.yaml --test-config
weir --config /etc/weir/weir.yaml</pre>
  <p>Flags override the file. <code>weir --help</code> lists them all.</p>

  <h2>Watching it run</h2>
  <p>weir logs its listen address, document root and stage groups to stderr at start-up; add
  <code>--access-log -</code> to see each request on stdout. Prometheus metrics are served on a
  listener of their own, never this port: <code>http://127.0.0.1:9464/metrics</code> by default
  (<code>--metrics-listen ADDR:PORT</code> moves it, <code>--no-metrics</code> turns it off).</p>

  <h2>Look around</h2>
  <ul>
    <li><a href="/about/">How weir works</a> (a nested directory's index page)</li>
    <li><a href="/hello.txt">hello.txt</a> (plain text)</li>
    <li><a href="/style.css">style.css</a> (the stylesheet of this page)</li>
  </ul>
</main>
</body>
</html>
)html";

constexpr std::string_view style_css = R"css(:root {
  color-scheme: light dark;
  --accent: #2a7ab0;
}
body {
  margin: 0;
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif;
}
main {
  max-width: 42rem;
  margin: 3rem auto;
  padding: 0 1rem;
}
h1 {
  color: var(--accent);
}
a {
  color: var(--accent);
}
pre, code {
  font-family: ui-monospace, "SFMono-Regular", Menlo, monospace;
}
pre {
  padding: 0.75rem 1rem;
  border-left: 3px solid var(--accent);
  background: rgba(127, 127, 127, 0.12);
  overflow-x: auto;
}
)css";

constexpr std::string_view about_html = R"html(<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>About weir</title>
  <link rel="stylesheet" href="/style.css">
</head>
<body>
<main>
  <h1>About weir</h1>
  <p>weir is a static-file server built as a staged event-driven architecture (SEDA). Every
  request flows through five stages:</p>
  <pre>accept -&gt; read_parse -&gt; cache_lookup -&gt; (miss) disk_io -&gt; send</pre>
  <p>A stage is only code. Which stages share a queue and a thread pool is configuration: stages
  that name the same <code>group</code> in the config file are fused and call each other
  directly, with no queue between them. When a queue is full, weir answers
  <code>503 Service Unavailable</code> with a <code>Retry-After</code> header instead of letting
  latency grow without bound.</p>
  <p>Small files are kept in an in-memory cache (LRU or LFU); larger ones are sent straight from
  disk.</p>
  <p><a href="/">Back to the start page</a></p>
</main>
</body>
</html>
)html";

constexpr std::string_view hello_txt = "Hello from weir!\n";

struct sample_file {
  const char* path;
  std::string_view body;
};

constexpr sample_file files[] = {{"index.html", index_html},
                                 {"style.css", style_css},
                                 {"about/index.html", about_html},
                                 {"hello.txt", hello_txt}};

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), "sample site: " + what);
}

void write_file(const std::string& path, std::string_view body) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw_errno(path);
  while (!body.empty()) {
    const ssize_t n = ::write(fd, body.data(), body.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int saved = errno;
      ::close(fd);
      errno = saved;
      throw_errno(path);
    }
    body.remove_prefix(static_cast<std::size_t>(n));
  }
  if (::close(fd) != 0) throw_errno(path);
}

}  // namespace

std::string materialize_sample_site() {
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = (tmp != nullptr && *tmp != '\0') ? tmp : "/tmp";
  dir += "/weir-sample-XXXXXX";
  std::vector<char> name(dir.begin(), dir.end());
  name.push_back('\0');
  if (::mkdtemp(name.data()) == nullptr) throw_errno("mkdtemp " + dir);
  dir = name.data();

  try {
    if (::mkdir((dir + "/about").c_str(), 0755) != 0) throw_errno(dir + "/about");
    for (const sample_file& f : files) write_file(dir + "/" + f.path, f.body);
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
    throw;
  }
  return dir;
}

}  // namespace weir
