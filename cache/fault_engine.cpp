// FaultEngine: injected failures complete immediately on the caller's thread.
#include "cache/fault_engine.h"

namespace cachefuse::cache {

void FaultEngine::Read(int fd, uint64_t off, void* buf, size_t len, int buf_index, IoCompletion* done) {
  if (fail_reads_) {
    done->OnIoComplete(-fail_errno_);
    return;
  }
  inner_->Read(fd, off, buf, short_reads_ ? len / 2 : len, buf_index, done);
}

void FaultEngine::Write(int fd, uint64_t off, const void* buf, size_t len, int buf_index, IoCompletion* done) {
  if (fail_writes_) {
    done->OnIoComplete(-fail_errno_);
    return;
  }
  inner_->Write(fd, off, buf, len, buf_index, done);
}

void FaultEngine::Fdatasync(int fd, IoCompletion* done) {
  if (fail_syncs_) {
    done->OnIoComplete(-fail_errno_);
    return;
  }
  inner_->Fdatasync(fd, done);
}

}  // namespace cachefuse::cache
