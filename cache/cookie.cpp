// Cookie: use/unuse/invalidate/relinquish of one file's cache data.
#include "cache/cookie.h"

#include <spdlog/spdlog.h>

#include "cache/cache.h"
#include "cache/cache_object.h"
#include "cache/layout.h"
#include "cache/shape.h"
#include "common/hash.h"

namespace cachefuse::cache {

Cookie::Cookie(Volume* volume, std::string key, std::string aux, uint64_t size)
    : volume_(volume), key_(std::move(key)), name_(layout::ObjectName(key_)), aux_(std::move(aux)), size_(size) {
  volume_->cache()->stats().cookies_acquired++;
  // The kernel may forget an inode and look it up again while the object of its
  // previous cookie is still open (it closes after idle_close): take it over if
  // it holds this version of the file, rather than reopen the file under its
  // lock. A stale one is abandoned and replaced by a fresh file.
  auto existing = volume_->cache()->FindOpenObject(layout::ObjectId(volume_->name(), name_));
  if (existing && existing->TakeOver(aux_, size_)) {
    object_ = std::move(existing);
  } else {
    if (existing) existing->Abandon();
    object_ = NewGenerationLocked(existing != nullptr);
  }
}

Cookie::~Cookie() {
  if (!relinquished_) Relinquish(false);
}

std::shared_ptr<CacheObject> Cookie::NewGenerationLocked(bool replace_on_disk) {
  AuxData aux;
  aux.object_size = size_;
  aux.key = key_;
  aux.coherency = aux_;
  auto obj = std::make_shared<CacheObject>(volume_->cache(), volume_, key_, name_, std::move(aux));
  if (replace_on_disk) obj->ReplaceOnOpen();
  return obj;
}

void Cookie::OpenObjectLocked() {
  object_->Open(false);
}

UseToken Cookie::Use(bool will_modify) {
  std::lock_guard lk(mu_);
  if (users_++ == 0) volume_->cache()->stats().cookies_in_use++;
  if (will_modify) ++modifiers_;
  OpenObjectLocked();
  object_->AddUser(will_modify);
  spdlog::debug("cookie={} op=use modify={} users={}", name_.substr(0, 8), will_modify, users_);
  return UseToken(object_, will_modify);
}

void Cookie::Unuse(const UseToken& use, const std::string& aux, uint64_t size) {
  std::lock_guard lk(mu_);
  if (users_ == 0) return;
  if (aux != aux_ || size != size_) {
    aux_ = aux;
    size_ = size;
    object_->SetAux(aux, size);
  }
  const bool modify = use.will_modify() && modifiers_ > 0;
  if (modify) --modifiers_;
  object_->RemoveUser(modify);
  // An open made before an invalidation counts as a user of its own
  // generation too (and of the current one, which took its users over): it
  // leaves both, so the old one goes idle and its memory can go.
  if (use.object_ && use.object_ != object_) use.object_->RemoveUser(use.will_modify());
  if (--users_ == 0) {
    volume_->cache()->stats().cookies_in_use--;
    volume_->cache()->Kick();
  }
}

void Cookie::Invalidate(const std::string& aux, uint64_t size) {
  std::lock_guard lk(mu_);
  aux_ = aux;
  size_ = size;
  volume_->cache()->stats().invalidations++;
  spdlog::debug("cookie={} op=invalidate size={}", name_.substr(0, 8), size);
  object_->Abandon();
  object_ = NewGenerationLocked(true);
  if (users_ > 0) {
    object_->Open(true);
    for (unsigned i = 0; i < users_; ++i) object_->AddUser(i < modifiers_);
  }
  // With no users the new generation opens lazily; the old file on disk then
  // fails the coherency check and is replaced.
}

void Cookie::Relinquish(bool retire) {
  {
    std::lock_guard lk(mu_);
    if (relinquished_) return;
    relinquished_ = true;
    if (users_ > 0) {
      // Users the netfs never unused: let the object go idle, close and lose DIRTY.
      for (; users_ > 0; --users_) object_->RemoveUser(users_ <= modifiers_);
      modifiers_ = 0;
      volume_->cache()->stats().cookies_in_use--;
    }
    if (retire) object_->Retire();
  }
  // Outside mu_: Volume::mu_ comes before Cookie::mu_.
  volume_->cache()->stats().cookies_relinquished++;
  volume_->Forget(key_, this);
  volume_->cache()->Kick();
}

Shape Cookie::shape(uint64_t start, uint64_t len, uint64_t i_size) {
  auto obj = object();
  Cache* cache = volume_->cache();
  const uint64_t g = cache->granule();
  Shape s;
  const ReadShape r = ShapeRange(start, len, i_size, g);
  if (r.empty()) return s;
  s.granule_start = r.first;
  s.granule_end = r.end;
  s.byte_start = r.first * g;
  s.byte_end = std::min(r.end * g, i_size);
  s.dio_end = DioBytes(s.byte_end, cache->dio_align());
  std::lock_guard lk(obj->mu());
  for (uint64_t i = s.granule_start; i < s.granule_end; ++i) s.present.push_back(obj->PresentLocked(i));
  return s;
}

ChangeScope Cookie::BeginChange() {
  std::lock_guard lk(mu_);
  std::lock_guard olk(object_->mu());
  object_->BeginChangeLocked();
  return ChangeScope(object_);
}

void ChangeScope::End() {
  if (!object_) return;
  {
    std::lock_guard lk(object_->mu());
    object_->EndChangeLocked();
  }
  object_.reset();
}

void Cookie::NoteWrite(uint64_t off, uint64_t len, const std::string& new_aux, uint64_t new_size) {
  std::lock_guard lk(mu_);
  aux_ = new_aux;
  size_ = new_size;
  object_->PrepareModify();
  std::lock_guard olk(object_->mu());
  object_->NoteModifiedLocked(off, len, new_size);
  object_->SetAuxCoherencyLocked(new_aux);
}

void Cookie::NoteResize(const std::string& new_aux, uint64_t new_size) {
  std::lock_guard lk(mu_);
  aux_ = new_aux;
  size_ = new_size;
  object_->PrepareModify();
  std::lock_guard olk(object_->mu());
  object_->NoteModifiedLocked(new_size, 0, new_size);
  object_->SetAuxCoherencyLocked(new_aux);
}

void Cookie::NoteAttrChange(const std::string& new_aux) {
  std::lock_guard lk(mu_);
  aux_ = new_aux;
  std::lock_guard olk(object_->mu());
  object_->SetAuxCoherencyLocked(new_aux);
}

void Cookie::Forget() {
  std::lock_guard lk(mu_);
  volume_->cache()->stats().invalidations++;
  object_->Retire();
  object_ = NewGenerationLocked(false);
  if (users_ > 0) {
    object_->Open(true);
    for (unsigned i = 0; i < users_; ++i) object_->AddUser(i < modifiers_);
  }
}

std::shared_ptr<CacheObject> Cookie::object() {
  std::lock_guard lk(mu_);
  return object_;
}

std::vector<ByteRange> Cookie::CachedRanges() {
  {
    // Until a first use the object is only on disk: validate and load it as a
    // use would, so a file cached by an earlier mount shows its ranges.
    std::lock_guard lk(mu_);
    OpenObjectLocked();
  }
  auto obj = object();
  const uint64_t g = volume_->cache()->granule();
  std::lock_guard lk(obj->mu());
  std::vector<ByteRange> out;
  if (!obj->ReadableLocked()) return out;
  uint64_t size = obj->SizeLocked();
  for (const auto& e : obj->PresentMapLocked().Extents()) {
    out.push_back({e.start * g, std::min(e.end * g, size)});
  }
  return out;
}

std::string Cookie::aux() {
  std::lock_guard lk(mu_);
  return aux_;
}

uint64_t Cookie::size() {
  std::lock_guard lk(mu_);
  return size_;
}

bool Cookie::coherent_with(const std::string& aux) {
  std::lock_guard lk(mu_);
  return aux_ == aux;
}

}  // namespace cachefuse::cache
