// HttpClient: the libcurl side of the http source. One share (DNS cache, TLS
// sessions, the connection pool) and a pool of reusable easy handles, so that
// requests from any thread find a kept-alive connection; transfers follow
// redirects only within the origin; responses come back as values, bodies go
// to a sink. Counts requests, new connections and body bytes.
//
// Thread safety: Perform may be called from many threads at once; each call
// takes a handle of its own from the pool. The share is guarded by one mutex
// per kind of data libcurl shares (its lock callbacks).
#pragma once

#include <curl/curl.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "netfs_backends/backend.h"
#include "netfs_backends/http/http_proto.h"
#include "netfs_backends/http/http_url.h"

namespace cachefuse::netfs::http {

struct ClientConfig {
  HttpUrl origin;  // requests never leave scheme://host:port of this URL
  Credentials credentials;
  std::string ca_file;
  bool insecure = false;
  unsigned timeout_ms = 30000;  // calls without a deadline of their own; a stall of a stream
};

struct HttpResponse {
  long status = 0;
  std::string etag;
  std::string last_modified;
  std::string content_type;
  std::string content_range;
  std::optional<uint64_t> content_length;
  void Clear() { *this = HttpResponse(); }
};

// Takes the body of a 2xx response. Begin sees the headers before the first
// byte (and for a body-less response at the end, if it was never called);
// returning false refuses the body and ends the transfer.
class BodySink {
 public:
  virtual ~BodySink() = default;
  virtual bool Begin(const HttpResponse& response) = 0;
  virtual bool Write(const char* data, size_t n) = 0;
};

struct HttpRequest {
  std::string url;  // absolute, within the origin
  bool head = false;
  const char* range = nullptr;      // "first-last", or none
  curl_slist* headers = nullptr;    // extra request headers (If-Range), owned by the caller
  bool compressed = false;          // accept gzip etc. (listings; never ranges)
  Deadline deadline = kNoDeadline;  // the whole transfer; none: timeout_ms
  // A long transfer (a whole file): no time limit, but one that moves no
  // byte for timeout_ms fails, and cancel stops it.
  bool stream = false;
  const std::atomic<bool>* cancel = nullptr;
  BodySink* sink = nullptr;  // none: the body is dropped
};

struct HttpOutcome {
  CURLcode code = CURLE_OK;
  HttpResponse response;
  bool refused = false;       // the sink refused the body (its verdict stands)
  std::string effective_url;  // after redirects
  std::string error;          // libcurl's words, for messages
};

class HttpClient {
 public:
  explicit HttpClient(ClientConfig config);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  const ClientConfig& config() const { return config_; }
  // One request, with redirects inside the origin followed (at most 5).
  HttpOutcome Perform(HttpRequest& request);

  // The error of a transfer that did not complete (code != CURLE_OK), typed
  // for the retry policy. what: "GET http://host/path" (no secrets).
  Status TransportError(const HttpOutcome& outcome, const std::string& what) const;
  // The error of an HTTP status other than the one wanted: 404 not found,
  // 401/403 permission (401 with credentials: they were refused, fatal),
  // 408/429/5xx transient, a redirect out of the origin refused, else EIO.
  Status StatusError(const HttpOutcome& outcome, const std::string& what) const;

  uint64_t requests() const { return requests_.load(std::memory_order_relaxed); }
  uint64_t connections() const { return connections_.load(std::memory_order_relaxed); }
  uint64_t body_bytes() const { return body_bytes_.load(std::memory_order_relaxed); }
  void AddBodyBytes(uint64_t n) { body_bytes_.fetch_add(n, std::memory_order_relaxed); }

 private:
  struct Handle {
    CURL* easy = nullptr;
    char error[CURL_ERROR_SIZE] = {};
  };
  Handle* Acquire();
  void Release(Handle* h);
  Handle* NewHandle();
  // One transfer of url, no redirects.
  void Transfer(Handle* h, HttpRequest& request, const std::string& url, HttpOutcome* out);

  static void Lock(CURL*, curl_lock_data data, curl_lock_access, void* self);
  static void Unlock(CURL*, curl_lock_data data, void* self);

  const ClientConfig config_;
  CURLSH* share_ = nullptr;
  std::mutex share_mu_[CURL_LOCK_DATA_LAST];
  std::mutex pool_mu_;
  std::vector<Handle*> pool_;  // GUARDED_BY(pool_mu_): idle handles
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> connections_{0};
  std::atomic<uint64_t> body_bytes_{0};
};

}  // namespace cachefuse::netfs::http
