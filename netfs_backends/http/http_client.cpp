// HttpClient: libcurl transfers over a shared connection pool, redirects kept
// inside the origin, transport and status errors typed for the retry policy.
#include "netfs_backends/http/http_client.h"

#include <algorithm>
#include <cstring>

namespace cachefuse::netfs::http {
namespace {

constexpr long kBufferSize = 512 * 1024;  // CURL_MAX_READ_SIZE: fewer, larger writes
constexpr size_t kMaxIdleHandles = 64;
constexpr int kMaxRedirects = 5;

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// The state of one transfer, for libcurl's callbacks.
struct Xfer {
  HttpRequest* request = nullptr;
  HttpOutcome* out = nullptr;
  CURL* easy = nullptr;
  bool begun = false;    // the first body byte (or the end) was seen
  bool discard = false;  // a body not for the sink (an error page, a redirect)
};

size_t OnHeader(char* data, size_t size, size_t n, void* p) {
  auto* x = static_cast<Xfer*>(p);
  const size_t len = size * n;
  std::string_view line(data, len);
  if (line.size() >= 5 && line.substr(0, 5) == "HTTP/") {
    // A new response (after a 100 Continue or a proxy's CONNECT): its headers only.
    x->out->response.Clear();
    size_t sp = line.find(' ');
    if (sp != std::string_view::npos) x->out->response.status = std::atol(std::string(line.substr(sp + 1, 3)).c_str());
    return len;
  }
  auto h = ParseHeaderLine(line);
  if (!h) return len;
  HttpResponse& r = x->out->response;
  if (h->name == "etag") {
    r.etag = h->value;
  } else if (h->name == "last-modified") {
    r.last_modified = h->value;
  } else if (h->name == "content-type") {
    r.content_type = h->value;
  } else if (h->name == "content-range") {
    r.content_range = h->value;
  } else if (h->name == "content-length") {
    char* end = nullptr;
    unsigned long long v = std::strtoull(h->value.c_str(), &end, 10);
    if (end != h->value.c_str() && *end == '\0') r.content_length = v;
  }
  return len;
}

bool BeginBody(Xfer* x) {
  x->begun = true;
  long code = 0;
  curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
  x->out->response.status = code;
  if (code / 100 != 2 || x->request->sink == nullptr) {
    x->discard = true;
    return true;
  }
  if (!x->request->sink->Begin(x->out->response)) {
    x->out->refused = true;
    return false;
  }
  return true;
}

size_t OnBody(char* data, size_t size, size_t n, void* p) {
  auto* x = static_cast<Xfer*>(p);
  const size_t len = size * n;
  if (!x->begun && !BeginBody(x)) return 0;
  if (x->discard) return len;
  if (!x->request->sink->Write(data, len)) {
    x->out->refused = true;
    return 0;
  }
  return len;
}

int OnProgress(void* p, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* x = static_cast<Xfer*>(p);
  const std::atomic<bool>* cancel = x->request->cancel;
  return cancel != nullptr && cancel->load(std::memory_order_relaxed) ? 1 : 0;
}

bool IsRedirect(long status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

}  // namespace

HttpClient::HttpClient(ClientConfig config) : config_(std::move(config)) {
  GlobalInit();
  share_ = curl_share_init();
  curl_share_setopt(share_, CURLSHOPT_LOCKFUNC, &HttpClient::Lock);
  curl_share_setopt(share_, CURLSHOPT_UNLOCKFUNC, &HttpClient::Unlock);
  curl_share_setopt(share_, CURLSHOPT_USERDATA, this);
  curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
}

HttpClient::~HttpClient() {
  for (Handle* h : pool_) {
    curl_easy_cleanup(h->easy);
    delete h;
  }
  curl_share_cleanup(share_);
}

void HttpClient::Lock(CURL*, curl_lock_data data, curl_lock_access, void* self) {
  static_cast<HttpClient*>(self)->share_mu_[data].lock();
}

void HttpClient::Unlock(CURL*, curl_lock_data data, void* self) {
  static_cast<HttpClient*>(self)->share_mu_[data].unlock();
}

HttpClient::Handle* HttpClient::NewHandle() {
  auto* h = new Handle;
  CURL* e = curl_easy_init();
  h->easy = e;
  curl_easy_setopt(e, CURLOPT_SHARE, share_);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_BUFFERSIZE, kBufferSize);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "cachefuse/0.1");
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  // Redirects are followed here, in Perform, and only inside the origin.
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  // Several connections carry parallel ranges better than one multiplexed one.
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, h->error);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, &OnProgress);
  curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
  // TLS verification is on unless insecure; proxies come from the environment
  // (http_proxy, https_proxy, no_proxy), as libcurl reads them by default.
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, config_.insecure ? 0L : 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, config_.insecure ? 0L : 2L);
  if (!config_.ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, config_.ca_file.c_str());
  const Credentials& c = config_.credentials;
  if (!c.token.empty()) {
    curl_easy_setopt(e, CURLOPT_HTTPAUTH, CURLAUTH_BEARER);
    curl_easy_setopt(e, CURLOPT_XOAUTH2_BEARER, c.token.c_str());
  } else if (!c.user.empty()) {
    curl_easy_setopt(e, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    curl_easy_setopt(e, CURLOPT_USERNAME, c.user.c_str());
    curl_easy_setopt(e, CURLOPT_PASSWORD, c.password.c_str());
  }
  return h;
}

HttpClient::Handle* HttpClient::Acquire() {
  {
    std::lock_guard lk(pool_mu_);
    if (!pool_.empty()) {
      Handle* h = pool_.back();
      pool_.pop_back();
      return h;
    }
  }
  return NewHandle();
}

void HttpClient::Release(Handle* h) {
  {
    std::lock_guard lk(pool_mu_);
    if (pool_.size() < kMaxIdleHandles) {
      pool_.push_back(h);
      return;
    }
  }
  curl_easy_cleanup(h->easy);
  delete h;
}

void HttpClient::Transfer(Handle* h, HttpRequest& req, const std::string& url, HttpOutcome* out) {
  CURL* e = h->easy;
  h->error[0] = '\0';
  out->response.Clear();
  out->refused = false;
  long total_ms = 0;
  long connect_ms = static_cast<long>(config_.timeout_ms);
  if (!req.stream) {
    if (req.deadline == kNoDeadline) {
      total_ms = static_cast<long>(config_.timeout_ms);
    } else {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(req.deadline - Clock::now()).count();
      if (left <= 0) {
        out->code = CURLE_OPERATION_TIMEDOUT;
        out->error = "deadline passed before the request";
        return;
      }
      total_ms = static_cast<long>(std::min<int64_t>(left, INT32_MAX));
    }
    connect_ms = std::min(connect_ms, total_ms);
  }
  curl_easy_setopt(e, CURLOPT_URL, url.c_str());
  if (req.head) {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  }
  curl_easy_setopt(e, CURLOPT_RANGE, req.range);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, req.headers);
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, req.compressed ? "" : nullptr);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, total_ms);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, std::max(connect_ms, 1L));
  curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, req.stream ? 1L : 0L);
  curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME,
                   req.stream ? std::max(1L, static_cast<long>(config_.timeout_ms / 1000)) : 0L);
  Xfer x;
  x.request = &req;
  x.out = out;
  x.easy = e;
  curl_easy_setopt(e, CURLOPT_HEADERDATA, &x);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &x);
  curl_easy_setopt(e, CURLOPT_XFERINFODATA, &x);
  requests_.fetch_add(1, std::memory_order_relaxed);
  out->code = curl_easy_perform(e);
  long connects = 0;
  curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &connects);
  connections_.fetch_add(static_cast<uint64_t>(connects), std::memory_order_relaxed);
  long code = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
  if (code != 0) out->response.status = code;
  if (out->code == CURLE_OK && !x.begun && code / 100 == 2 && req.sink != nullptr) {
    // No body (HEAD, an empty file): the sink still sees the headers.
    if (!req.sink->Begin(out->response)) out->refused = true;
  }
  if (out->code != CURLE_OK) out->error = h->error[0] ? h->error : curl_easy_strerror(out->code);
  char* eff = nullptr;
  curl_easy_getinfo(e, CURLINFO_EFFECTIVE_URL, &eff);
  out->effective_url = eff ? eff : url;
}

HttpOutcome HttpClient::Perform(HttpRequest& req) {
  HttpOutcome out;
  Handle* h = Acquire();
  std::string url = req.url;
  for (int hop = 0;; ++hop) {
    Transfer(h, req, url, &out);
    if (out.code != CURLE_OK || !IsRedirect(out.response.status)) break;
    char* loc = nullptr;
    curl_easy_getinfo(h->easy, CURLINFO_REDIRECT_URL, &loc);
    if (loc == nullptr) break;
    auto target = ParseAbsoluteUrl(loc);
    if (!target || !target->SameOrigin(config_.origin)) {
      out.error = "redirect to " + (target ? target->Origin() : std::string("an unusable URL")) +
                  " not followed (only redirects within " + config_.origin.Origin() + " are)";
      break;
    }
    if (hop + 1 >= kMaxRedirects) {
      out.error = "more than " + std::to_string(kMaxRedirects) + " redirects";
      break;
    }
    url = target->Origin() + target->path;
  }
  Release(h);
  return out;
}

Status HttpClient::TransportError(const HttpOutcome& o, const std::string& what) const {
  const std::string msg = what + ": " + o.error;
  switch (o.code) {
    case CURLE_OK:
      return Status::Ok();
    case CURLE_OPERATION_TIMEDOUT:
      return Status::Timeout(msg);
    case CURLE_COULDNT_CONNECT:
      return Status::Transient(ECONNREFUSED, msg);
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return Status::Transient(EHOSTUNREACH, msg);
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return Status::Transient(ECONNRESET, msg);
    case CURLE_PARTIAL_FILE:
      return Status::Transient(EIO, msg + " (short body)");
    case CURLE_ABORTED_BY_CALLBACK:
      return Status::Transient(ECANCELED, msg);
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
      return Status::Fatal(EACCES,
                           msg + " (TLS verification failed: ca_file=FILE names the CA; insecure skips the check)");
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
      return Status::Fatal(EINVAL, msg);
    default:
      return Status::Transient(EIO, msg);
  }
}

Status HttpClient::StatusError(const HttpOutcome& o, const std::string& what) const {
  const long s = o.response.status;
  const std::string msg = what + ": HTTP " + std::to_string(s);
  if (s == 404 || s == 410) return Status::FromErrno(ENOENT, msg + " (not found)");
  if (s == 401) {
    if (!config_.credentials.empty()) return Status::Fatal(EACCES, msg + ": the server refused the credentials");
    return Status::FromErrno(EACCES, msg + ": the server wants credentials (-o credentials=FILE)");
  }
  if (s == 403) return Status::FromErrno(EACCES, msg + " (forbidden)");
  if (s == 407) return Status::Fatal(EACCES, msg + ": the proxy wants credentials");
  if (s == 408 || s == 429 || s / 100 == 5) return Status::Transient(s == 429 ? EAGAIN : EIO, msg);
  if (IsRedirect(s))
    return Status::FromErrno(EACCES, msg + ": " + (o.error.empty() ? "redirect not followed" : o.error));
  return Status::FromErrno(EIO, msg);
}

}  // namespace cachefuse::netfs::http
