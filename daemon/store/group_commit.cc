// Store: group commit. Writes that arrive while one transaction commits
// wait, then share the next transaction, so one fsync serves them all.
#include <exception>

#include "daemon/store/connection.h"
#include "daemon/store/store.h"

namespace mnemo::daemon::store {

struct Store::PendingWrite {
  const std::function<void()>* op;
  std::exception_ptr error;
  bool done = false;
};

void Store::grouped_write(const std::function<void()>& op) {
  PendingWrite me{&op};
  std::unique_lock lock(append_mu_);
  appends_.push_back(&me);
  // One thread at a time commits; the others' writes ride in its next batch.
  append_cv_.wait(lock, [&] { return me.done || !append_leader_; });
  while (!me.done) {
    append_leader_ = true;
    std::vector<PendingWrite*> batch;
    batch.swap(appends_);
    lock.unlock();
    commit_writes(batch);
    lock.lock();
    append_leader_ = false;
    append_cv_.notify_all();
  }
  if (me.error) std::rethrow_exception(me.error);
}

void Store::commit_writes(std::vector<PendingWrite*>& batch) {
  std::lock_guard lock(mu_);
  // Set when the storage failed: the whole transaction is undone, so every
  // write of the batch fails with that error, including the ones whose
  // savepoint had been released (none of them was acknowledged yet).
  std::exception_ptr storage_error;
  try {
    // The write lock is taken before anything is read, so concurrent writers
    // (other threads, or another process) cannot pick the same seq.
    Transaction tx(*db_);
    for (PendingWrite* p : batch) {
      // A failing write (unknown session, duplicate id) must not undo the others.
      db_->exec("SAVEPOINT grouped");
      try {
        (*p->op)();
        db_->exec("RELEASE grouped");
      } catch (const StorageFailure&) {
        // A full disk or I/O error: SQLite may already have rolled the whole
        // transaction back, and the next writes would fail the same way.
        storage_error = std::current_exception();
        break;
      } catch (...) {
        p->error = std::current_exception();
        db_->exec("ROLLBACK TO grouped");
        db_->exec("RELEASE grouped");
      }
    }
    if (!storage_error) tx.commit();
  } catch (...) {
    storage_error = std::current_exception();
  }
  // Transaction's destructor has rolled back whatever was left open.
  if (storage_error)
    for (PendingWrite* p : batch)
      if (!p->error) p->error = storage_error;
  for (PendingWrite* p : batch) p->done = true;
}

}  // namespace mnemo::daemon::store
