// darkfs FUSE edge: a small N-API binding to libfuse 3 (high-level, path-based API).
//
// libfuse's session runs in native threads of our own loop (session_loop: libfuse's
// fuse_session_receive_buf/process_buf, the public parts of its fuse_loop_mt, plus one rewrite
// of the kernel's RMDIR: see rmdir_as_rename). Every request is copied
// into a `req_t` (paths, bytes) and handed to JavaScript through one
// napi_threadsafe_function; the worker thread then waits until JavaScript answers with
// `reply(req, result, a, b)` or until the request's native deadline passes (then -EIO). The
// Node event loop never blocks, and as many requests are in flight as libfuse has workers.
// Reads and writes are the exception (read_direct, write_direct): they bypass libfuse, the worker
// goes back to the device at once, and JS's reply is written to the device from the JS thread
// (direct_reply), so no worker waits for them and none is woken to send their reply. A read's
// reply goes straight from JS's buffer; a large write's bytes go to JS in the very buffer the
// kernel wrote the request into (no copy), a small one's in a copy of its own size. Direct writes
// unanswered are capped (DIRECT_WRITES, DIRECT_WRITE_BYTES): past that a write takes the worker's
// path above, and the worker waits (backpressure).
// Direct requests have the same native deadline (reap_thread): no worker is there to wait for
// it, and an answer that comes late is dropped, never written twice; the kernel's interrupts of
// them (FUSE_INTERRUPT) are counted and do not cut them short (direct_interrupt) unless the
// caller is dying.
// A request whose caller is dying (caller_dying: SIGKILL pending, as a signal it does not handle
// leaves it) is told to JS (EV_INTERRUPT, with the request's number), which answers it EINTR
// (but a change of a name, or an open that truncates, which it answers only when it has ended):
// found when the kernel interrupts it (direct_interrupt; for the requests libfuse's workers wait
// on, fuse_interrupted() polled in dispatch), looked at again every INTERRUPT_POLL_MS after an
// interrupt whose caller lived on, and for direct reads and O_DIRECT writes older than
// READ_WATCH_MS without one (the kernel never interrupts readahead, O_DIRECT reads or in-place
// O_DIRECT writes, sent in the background, whose killed caller waits all the same). An O_DIRECT
// request whose thread was gone when it arrived (an AIO submitter that exited at once) has no
// process of its own to look at: its handle's opener stands in (opener_note), dying when it is
// on its way out (waiting in exit_aio for the request).
// Changes of a name get the sync deadline natively (is_settled_op): JS answers them with what
// the Volume did, never EIO while the Volume applies them within that deadline (past it, and
// its grace, the caller gets EIO here, and reply says JS's late answer went nowhere).
//
// JS-facing functions:
//   mount(dir, { debug, timeoutMs, syncTimeoutMs, attrTimeout, directWrites, maxWrite }, handler) -> External
//     handler(op, req, path, path2, data, n0, n1, n2, n3, n4, uid, gid, umask)
//     events: handler(EV_MOUNTED, null, ..., n0 = 0 | -errno), handler(EV_EXIT, ...),
//             handler(EV_INTERRUPT, null, ..., n0 = seq): the request numbered seq has a dying caller
//     requests: handler(op, req, ..., umask, seq): seq numbers the request for EV_INTERRUPT
//   reply(req, result, a?, b?)    answer a request once (a, b depend on the op; for a change
//     -> taken                    followed by libfuse's own getattr, b = the new attributes);
//                                 false when it was answered already (a deadline, an interrupt):
//                                 the answer went nowhere (a handle it gives is JS's to release)
//   invalidate(m, path)           drop cached attrs/entries of path (queued for the mount's own thread, best effort)
//   stats(m)                      counts of direct writes: { writes, writesMax, writeBytes, handed, copied, overCap },
//                                 of direct requests { interrupted, expired, late }, and of
//                                 requests whose caller was dying { killed }, and of the others
//                                 (libfuse's workers') seen interrupted { interruptedOthers } or
//                                 given up at the native deadline { expiredOthers }, and of
//                                 invalidations tried again { invalRetried } (inval_thread),
//                                 and those of them that found the inode { invalRecovered }
//   umount(dir, cb(errno))        lazy unmount, umount2(MNT_DETACH), on a libuv worker
#define FUSE_USE_VERSION 312
#define _GNU_SOURCE
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#include <node_api.h>
#include <errno.h>
#include <stdatomic.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <time.h>
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

// Largest write the kernel sends in one request (and readahead window).
#define MAX_WRITE (1024 * 1024)
// Worker threads libfuse may run at once (= requests in flight), and idle ones it keeps.
#define MAX_THREADS 64
// Direct writes (write_direct) unanswered at once, by default, and their bytes: past either a
// write goes to libfuse (op_write), whose worker waits for JS's answer, so writes beyond these
// are bounded by MAX_THREADS as they all were before write_direct (backpressure on the kernel)
#define DIRECT_WRITES 256
#define DIRECT_WRITE_BYTES (256L * 1024 * 1024)
#define IDLE_THREADS 8
// Requests the kernel keeps in flight without a caller waiting on each (readahead, O_DIRECT
// reads); its default is 12.
#define MAX_BACKGROUND 128
// Rename flag (no kernel one: renameat2 refuses unknown flags) marking a rename that is the
// kernel's rmdir, rewritten by rmdir_as_rename; JS removes the directory (fuse/ops.ts).
#define RENAME_IS_RMDIR 0x80000000u
// Extra time the native side waits beyond the JS deadline before giving up on its own.
#define NATIVE_GRACE_MS 5000
// Number of stat fields JS sends for getattr, and statfs fields.
#define STAT_FIELDS 15
#define STATFS_FIELDS 7
// How long attributes answered with a change stay usable for the getattr that follows it.
#define AFTER_TTL_NS 5000000L
// Times a getattr is asked again because an invalidation of its path came while JS answered it.
#define GETATTR_ASKS 3
// Slots of the count of invalidations pushed by path (mount_t.looked): a path's slot is a hash of
// it, shared by the paths of the same hash (an ask again the more, never one the fewer: op_getattr).
#define LOOKED_SLOTS 1024
// The getattrs by path an invalidation that found no inode looks its path up in (mount_t.recent,
// a ring: the latest ones, those unanswered kept), and how long after its answer one counts: the
// time the kernel takes to make the inode from the reply, far under any attribute time.
#define RECENT_GETATTRS 256
#define RECENT_NS 200000000LL
// An invalidation that found no inode (inval_thread) is tried again after this (us), then twice
// as long each time, up to INVAL_RETRY_MAX_US between tries: the old attributes an inode made
// late shows stay for about as long as the kernel took to make it since the first try.
#define INVAL_RETRY_US 100
#define INVAL_RETRY_MAX_US 64000
// Invalidations waiting to be tried again, at most (past that the oldest is dropped).
#define INVAL_RETRIES_MAX 256

enum {
  OP_GETATTR = 1, OP_READLINK, OP_MKNOD, OP_MKDIR, OP_UNLINK, OP_RMDIR, OP_SYMLINK,
  OP_RENAME, OP_LINK, OP_CHMOD, OP_CHOWN, OP_TRUNCATE, OP_OPEN, OP_READ, OP_WRITE,
  OP_STATFS, OP_FLUSH, OP_RELEASE, OP_FSYNC, OP_SETXATTR, OP_GETXATTR, OP_LISTXATTR,
  OP_REMOVEXATTR, OP_READDIR, OP_ACCESS, OP_CREATE, OP_UTIMENS, OP_OPENDIR, OP_RELEASEDIR,
  OP_FSYNCDIR, OP_FALLOCATE,
  EV_MOUNTED = 100, EV_EXIT = 101, EV_INTERRUPT = 102
};
// How often a worker waiting on JS looks whether libfuse saw its request interrupted (the
// high-level API has no callback for it: fuse_interrupted() is a flag), and how often an
// interrupted request whose caller was not dying then is looked at again (a SIGKILL after a
// handled signal brings no second interrupt from the kernel).
#define INTERRUPT_POLL_MS 50
// A direct read (or O_DIRECT write) unanswered this long has its caller looked at every
// INTERRUPT_POLL_MS even with no interrupt: the kernel sends none for the reads it makes in the
// background, nor for O_DIRECT writes (async_dio: a killed writer waits for its in-place write
// uninterruptibly). A killed caller
// waits in D state for its O_DIRECT reads (async_dio) and for its AIO reads (exit_aio), while a
// buffered reader waits for its readahead killably: it exits at once, its thread gone, and the
// read is left with no one waiting (caller_dying tells these apart).
#define READ_WATCH_MS 500
// Callers the expiry thread looks at in one pass (the rest at the next).
#define WATCH_MAX 64
// Buckets of the table of O_DIRECT handles' openers (mount_t.openers).
#define OPENER_BUCKETS 64

// An O_DIRECT handle's opener: the process whose open made handle `fh` (opener_note).
typedef struct opener_s {
  struct opener_s *next;
  uint64_t fh;
  uint32_t tgid;
} opener_t;

typedef struct mount_s {
  struct fuse *fuse;
  napi_threadsafe_function tsfn;
  char *dir;
  int debug;
  double timeout_ms;
  double sync_timeout_ms; // the deadline of writes, flushes, fsyncs and releases (is_sync_op)
  double attr_timeout;
  // the max_write asked of the kernel (MAX_WRITE, or less: the mount's maxWrite, for tests), the
  // kernel's fs.fuse.max_pages_limit (read once at mount), and the shortest WRITE that can be a
  // piece of a write(2) with more to come (piece_min, set from the kernel's INIT: see write_bits)
  uint32_t max_write, pages_limit, piece_min;
  pthread_rwlock_t lock; // guards `fuse` for invalidations (read: they may block a while, several at once)
  // a write's reply waits for the refresh of its other names (inval_reply, finish_write): one at
  // a time, under inval_mu
  int refreshing;
  // invalidations waiting for the mount's invalidation thread (see inval_thread), oldest first,
  // and those waiting to be tried again (inval_retry: unordered, inval_retries of them); and
  // for js_stats: tries again, and the invalidations they made (under inval_mu)
  pthread_mutex_t inval_mu;
  pthread_cond_t inval_cv;
  struct inval_s *inval_head, *inval_tail, *inval_retry;
  int inval_stop, inval_retries;
  uint64_t inval_retried, inval_recovered;
  // invalidations pushed so far (inval_push) of the paths of each slot (LOOKED_SLOTS): op_getattr
  struct { atomic_uint pushed; } looked[LOOKED_SLOTS];
  // the latest getattrs by path (op_getattr: a kernel's LOOKUP asks for one first), a ring of
  // RECENT_GETATTRS (next: where the next goes): the path (exact), unanswered or not, when it
  // succeeded (CLOCK_MONOTONIC, ns; 0: not, or not yet); under recent_mu, which only op_getattr
  // and the invalidation thread's tries (inval_may_miss) take, never a push
  pthread_mutex_t recent_mu;
  struct { char *path; int busy; long long ok_ns; } recent[RECENT_GETATTRS];
  unsigned recent_next;
  // direct reads (read_direct): the device their replies are written to (-1 once the session has
  // ended), and how many are unanswered; reply_mu guards both, reply_cv tells the drain
  pthread_mutex_t reply_mu;
  pthread_cond_t reply_cv;
  int fd;
  long direct_inflight;
  // direct writes unanswered (under reply_mu, as direct_inflight, which counts them too), their
  // bytes, the most there have been at once, and the cap on them (DIRECT_WRITES, or the mount's
  // directWrites); and for js_stats: writes whose request buffer went to JS whole, writes copied
  // out of it, writes left to libfuse because the cap was reached
  long direct_writes, direct_writes_max, direct_write_cap;
  size_t direct_write_bytes;
  uint64_t writes_handed, writes_copied, writes_over_cap;
  // direct requests unanswered, oldest first, reads [0] and writes [1] (under reply_mu): their
  // deadlines are their arrival plus one constant per list, so each list's head is its earliest
  // (reap_thread answers it EIO once past it); and the kernel's interrupts find them here
  struct req_s *direct_head[2], *direct_tail[2];
  // the expiry thread (reap_thread) waits on reap_cv until the earliest deadline (reap_at, when
  // reap_timed; with none in flight, until told); reap_stop ends it
  pthread_cond_t reap_cv;
  struct timespec reap_at;
  int reap_timed, reap_stop;
  // for js_stats: direct requests the kernel interrupted, those answered EIO at the native
  // deadline, and answers dropped because the request had been answered already (JS's, late)
  uint64_t direct_interrupted, direct_expired, direct_late;
  // for js_stats: requests (direct or a worker's) whose caller was dying when the kernel
  // interrupted them, told to JS (EV_INTERRUPT: answered EINTR there); under reply_mu
  uint64_t killed;
  // for js_stats: requests of libfuse's workers seen interrupted (dispatch), and those given up
  // at the native deadline (answered EIO there: JS's event loop stuck); under reply_mu
  uint64_t worker_interrupted, worker_expired;
  // numbers requests for JS (req_t.seq), so EV_INTERRUPT can name one; under reply_mu
  double next_seq;
  // reap_thread's round of looking at callers (under reply_mu): a request watched has its caller
  // looked at once a round, WATCH_MAX callers a pass; the round ends at the pass that found none
  // left unlooked (req_t.watched)
  unsigned watch_round;
  // the processes that opened the O_DIRECT handles still open, by handle (under reply_mu): an
  // O_DIRECT read or write whose thread was gone when it arrived (an AIO submitter that exited)
  // has no process of its own to look at; its handle's opener is looked at instead (caller_dying)
  opener_t *openers[OPENER_BUCKETS];
} mount_t;

typedef struct inval_s {
  struct inval_s *next;
  char *path;
  // an invalidation to try again (inval_thread): since when it finds no inode, when to try
  // next, and the wait after that (us)
  long long since_ns, due_ns;
  int wait_us;
  // a direct write's reply, sent once its other names (names, count) are invalidated
  // (inval_reply, refresh_run); path is NULL then
  struct req_s *reply;
  struct fuse_write_out out;
  char **names;
  uint32_t count;
} inval_t;

typedef struct req_s {
  int op;
  // a direct read or write (read_direct, write_direct): no worker waits for it; js_reply writes
  // its reply to the device. Under the mount's reply_mu: prev/next in its list of direct requests
  // in flight, its deadline there, and `done` (answered: by JS or the deadline)
  int direct;
  struct req_s *prev, *next;
  struct timespec deadline;
  uint64_t unique;
  // the caller's thread id (the kernel's header), the request's number for JS (EV_INTERRUPT),
  // and, for a direct request (under reply_mu): the kernel interrupted it, and its caller was
  // found dying then or since (told to JS once)
  uint32_t pid;
  double seq;
  int interrupted, killed;
  // a direct read's or write's open flags had O_DIRECT (fuse_read_in.flags, fuse_write_in.flags:
  // caller_dying; such a write is watched as a read is), and the caller's
  // process id once caller_dying has seen it (0 before; under reply_mu)
  int odirect;
  uint32_t tgid;
  // tgid is not the caller's own but its handle's opener's (the thread was gone at arrival)
  int opener;
  struct timespec since; // a direct request's arrival (CLOCK_MONOTONIC)
  unsigned watched; // the mount's watch_round + 1 when its caller was last looked at (under reply_mu)
  mount_t *m;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int refs, done, abandoned, js_released, result;
  // a direct write: counted against the mount's cap on direct writes (`counted`) until it is
  // both answered and taken off the queue to JS (`delivered`: call_js ran, or it never will)
  int counted, delivered;
  char *path, *path2;
  char *in;
  // the bytes handed to JS: in + inoff, inlen of them (a direct write's request buffer holds the
  // kernel's headers before its bytes)
  size_t inoff, inlen;
  double n[5];
  uint32_t uid, gid, umask;
  // outputs, borrowed from the worker's frame; written only under mu while !abandoned
  char *out;
  size_t outsize;
  struct stat *st;
  struct statvfs *sv;
  struct fuse_file_info *fi;
  char **names;
  double *nums;
  uint32_t count;
  // attributes after a change (b of the reply), for the getattr libfuse makes next
  struct stat after;
  int has_after;
} req_t;

// libfuse's high-level API follows every setattr (chmod, chown, truncate, utimens), create,
// mknod, mkdir, symlink and link with a getattr of the same path, in the same worker thread, to
// fill the kernel's reply. JS answers those changes with the attributes they leave (b), and the
// getattr right after is answered from here, without a second trip through the event loop.
// One slot per thread, taken once, dropped by the thread's next request and after AFTER_TTL_NS:
// never older than the change the kernel is being told about.
static __thread char *after_path;
static __thread struct stat after_st;
static __thread struct timespec after_at;

static void after_clear (void) {
  free(after_path);
  after_path = NULL;
}

static void after_keep (const char *path, const struct stat *st) {
  after_clear();
  if (path == NULL) return;
  after_path = strdup(path);
  after_st = *st;
  clock_gettime(CLOCK_MONOTONIC, &after_at);
}

static int after_take (const char *path, struct stat *st) {
  if (after_path == NULL || path == NULL) return 0;
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  long age = (long)(now.tv_sec - after_at.tv_sec) * 1000000000L + (now.tv_nsec - after_at.tv_nsec);
  int hit = strcmp(after_path, path) == 0 && age >= 0 && age < AFTER_TTL_NS;
  if (hit) *st = after_st;
  after_clear();
  return hit;
}

static void decode_stat (const double *d, struct stat *st) {
  memset(st, 0, sizeof *st);
  st->st_ino = (ino_t)d[0];
  st->st_mode = (mode_t)d[1];
  st->st_nlink = (nlink_t)d[2];
  st->st_uid = (uid_t)d[3];
  st->st_gid = (gid_t)d[4];
  st->st_rdev = (dev_t)d[5];
  st->st_size = (off_t)d[6];
  st->st_blocks = (blkcnt_t)d[7];
  st->st_blksize = (blksize_t)d[8];
  st->st_atim.tv_sec = (time_t)d[9];
  st->st_atim.tv_nsec = (long)d[10];
  st->st_mtim.tv_sec = (time_t)d[11];
  st->st_mtim.tv_nsec = (long)d[12];
  st->st_ctim.tv_sec = (time_t)d[13];
  st->st_ctim.tv_nsec = (long)d[14];
}

// A condition variable whose timed waits count on CLOCK_MONOTONIC (deadlines taken from it).
static void cond_init_monotonic (pthread_cond_t *cv) {
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(cv, &ca);
  pthread_condattr_destroy(&ca);
}

static req_t *req_new (int op, const char *path, const char *path2) {
  req_t *r = calloc(1, sizeof(req_t));
  if (r == NULL) return NULL;
  r->op = op;
  pthread_mutex_init(&r->mu, NULL);
  cond_init_monotonic(&r->cv);
  r->path = path != NULL ? strdup(path) : NULL;
  r->path2 = path2 != NULL ? strdup(path2) : NULL;
  r->n[0] = r->n[1] = r->n[2] = r->n[3] = r->n[4] = -1;
  return r;
}

static void req_free (req_t *r) {
  pthread_mutex_destroy(&r->mu);
  pthread_cond_destroy(&r->cv);
  free(r->path);
  free(r->path2);
  free(r->in);
  if (r->names != NULL) {
    for (uint32_t i = 0; i < r->count; i++) free(r->names[i]);
    free(r->names);
  }
  free(r->nums);
  free(r);
}

static void req_unref (req_t *r) {
  pthread_mutex_lock(&r->mu);
  int left = --r->refs;
  pthread_mutex_unlock(&r->mu);
  if (left == 0) req_free(r);
}

// A direct request's reply, written to the device from the thread calling (the JS thread, the
// worker that took it when JS cannot be reached, the expiry thread), under
// the mount's reply_mu: n bytes of data, or the error err < 0. As libfuse's own replies
// (fuse_send_msg), one writev of the header and the data, which any thread may make: the kernel
// matches it to its request by `unique`. A reply the kernel no longer waits for (the connection
// aborted) fails, and is dropped as libfuse drops it. Only the first answer of a request is
// written (the deadline may come before JS's): returns 1 when this one was.
// Under reply_mu: a direct write leaves the cap's count. Not at its answer alone: a write the
// deadline answered while JS's event loop is stuck still waits in the queue to JS with its bytes,
// and the cap bounds those too (else each answer past the deadline admitted one more).
static void direct_write_uncount (req_t *r) {
  if (!r->counted) return;
  r->counted = 0;
  r->m->direct_writes--;
  r->m->direct_write_bytes -= r->inlen;
}

static int direct_reply_locked (req_t *r, int err, const void *data, size_t n) {
  mount_t *m = r->m;
  if (r->done) { m->direct_late++; return 0; }
  r->done = 1;
  int k = r->op == OP_WRITE;
  if (r->prev != NULL) r->prev->next = r->next; else m->direct_head[k] = r->next;
  if (r->next != NULL) r->next->prev = r->prev; else m->direct_tail[k] = r->prev;
  r->prev = r->next = NULL;
  if (err < 0 && err <= -512) err = -EIO; // the kernel takes -511..0 only
  struct fuse_out_header out;
  out.len = (uint32_t)(sizeof out + (err < 0 ? 0 : n));
  out.error = err < 0 ? err : 0;
  out.unique = r->unique;
  struct iovec iov[2] = { { &out, sizeof out }, { (void *)data, n } };
  if (m->fd >= 0) {
    ssize_t w = writev(m->fd, iov, err < 0 || n == 0 ? 1 : 2);
    (void)w;
  }
  if (r->delivered) direct_write_uncount(r);
  if (--m->direct_inflight == 0) pthread_cond_broadcast(&m->reply_cv);
  return 1;
}

static int direct_reply (req_t *r, int err, const void *data, size_t n) {
  pthread_mutex_lock(&r->m->reply_mu);
  int answered = direct_reply_locked(r, err, data, n);
  pthread_mutex_unlock(&r->m->reply_mu);
  return answered;
}

// A direct request's references and JS-side state are the JS thread's alone once handed over
// (no lock): one reference for call_js, one for JS's reply. Other threads touch it only under
// reply_mu while it is unanswered (in its list), and JS answers it before it lets it go. A write's
// buffer is JS's once call_js has made it a Buffer.
static void direct_unref (req_t *r) {
  // atomic: a write's reply may be sent, and the request let go, by the invalidation thread
  // (inval_reply)
  if (__atomic_sub_fetch(&r->refs, 1, __ATOMIC_ACQ_REL) == 0) { free(r->in); free(r); }
}

// Completes a request from the JS thread when JS cannot answer (teardown, throw).
static void req_fail_js (req_t *r, int err) {
  if (r->direct) {
    direct_reply(r, err, NULL, 0);
    if (!r->js_released) { r->js_released = 1; direct_unref(r); }
    return;
  }
  pthread_mutex_lock(&r->mu);
  int drop = !r->js_released;
  r->js_released = 1;
  if (!r->done && !r->abandoned) {
    r->result = err;
    r->done = 1;
    pthread_cond_signal(&r->cv);
  }
  int left = drop ? --r->refs : r->refs;
  pthread_mutex_unlock(&r->mu);
  if (left == 0) req_free(r);
}

static void post_event (mount_t *m, int ev, double n0);
static int ts_not_after (const struct timespec *a, const struct timespec *b);

// Reads /proc/PID/FILE into buf (NUL-ended); its length, or -1 with errno (ENOENT, ESRCH: no
// such task, or one /proc mounted hidepid hides).
static ssize_t proc_read (uint32_t pid, const char *file, char *buf, size_t size) {
  char path[48];
  snprintf(path, sizeof path, "/proc/%u/%s", (unsigned)pid, file);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, size - 1);
  int e = errno;
  close(fd);
  if (n < 0) { errno = e; return -1; }
  buf[n] = 0;
  return n;
}

// Is the task whose /proc/PID/status is `buf` dying? A signal whose default action kills, sent to
// a process that does not handle it, makes the kernel mark SIGKILL pending on every thread of it
// (complete_signal), as kill -9 does; a signal dumping core (SIGQUIT, SIGABRT) is pending as
// itself, neither handled, ignored nor blocked. A zombie (or dead) task is dying too.
static int status_dying (const char *buf) {
  if (strstr(buf, "\nState:\tZ") != NULL || strstr(buf, "\nState:\tX") != NULL) return 1;
  static const char *keys[5] = { "\nSigPnd:", "\nShdPnd:", "\nSigBlk:", "\nSigIgn:", "\nSigCgt:" };
  unsigned long long v[5] = { 0, 0, 0, 0, 0 };
  for (int i = 0; i < 5; i++) {
    const char *at = strstr(buf, keys[i]);
    if (at != NULL) v[i] = strtoull(at + strlen(keys[i]), NULL, 16);
  }
  unsigned long long pending = v[0] | v[1];
#define SIGBIT(s) (1ULL << ((s) - 1))
  if ((pending & SIGBIT(SIGKILL)) != 0) return 1;
  unsigned long long core = SIGBIT(SIGQUIT) | SIGBIT(SIGILL) | SIGBIT(SIGTRAP) | SIGBIT(SIGABRT) | SIGBIT(SIGBUS) |
    SIGBIT(SIGFPE) | SIGBIT(SIGSEGV) | SIGBIT(SIGXCPU) | SIGBIT(SIGXFSZ) | SIGBIT(SIGSYS);
#undef SIGBIT
  return (pending & core & ~v[2] & ~v[3] & ~v[4]) != 0;
}

// Is thread `tid` of process `tgid` on its way out: a zombie (or dead), or exiting (PF_EXITING in
// its stat's flags: a process killed, or exiting, with AIO reads in flight waits for them in
// exit_aio, in D state with no signal pending)? A thread gone counts as exiting.
static int task_exiting (uint32_t tgid, const char *tid) {
  char path[320], buf[1024];
  snprintf(path, sizeof path, "/proc/%u/task/%s/stat", (unsigned)tgid, tid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT || errno == ESRCH;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  int e = errno;
  close(fd);
  if (n < 0) return e == ESRCH;
  buf[n] = 0;
  // the fields after the command's closing parenthesis: state, ppid, pgrp, session, tty_nr,
  // tpgid, flags
  const char *at = strrchr(buf, ')');
  if (at == NULL) return 0;
  char state = 0;
  unsigned long long flags = 0;
  if (sscanf(at + 1, " %c %*d %*d %*d %*d %*d %llu", &state, &flags) != 2) return 0;
#define PF_EXITING_FLAG 0x4ULL
  return state == 'Z' || state == 'X' || (flags & PF_EXITING_FLAG) != 0;
#undef PF_EXITING_FLAG
}

// Is process `tgid` gone or on its way out: no entry, or every thread of it exiting (task_exiting;
// its leader alone is not enough: a leader that called pthread_exit stays a zombie while the
// other threads live on)? A process gone counts as `gone` says.
static int process_dying_or (uint32_t tgid, int gone) {
  char dir[40];
  snprintf(dir, sizeof dir, "/proc/%u/task", (unsigned)tgid);
  DIR *d = opendir(dir);
  if (d == NULL) return (errno == ENOENT || errno == ESRCH) ? gone : 0;
  int dying = 1;
  struct dirent *e;
  while (dying && (e = readdir(d)) != NULL) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    dying = task_exiting(tgid, e->d_name);
  }
  closedir(d);
  return dying;
}

static int process_dying (uint32_t tgid) { return process_dying_or(tgid, 1); }

// Is process `tgid` there, and every thread of it on its way out (process_dying, a process gone
// not counted)?
static int process_exiting (uint32_t tgid) { return process_dying_or(tgid, 0); }

// Is the caller (thread `pid`, from the kernel's header) dying (status_dying)? Read from
// /proc/PID/status (a thread id is found there too); the process's id (Tgid) is kept in *tgid the
// first time it is seen (0 until then). A thread with no entry (ENOENT, ESRCH) is one no request
// of its own waits in: the kernel keeps the thread of a synchronous request until it is answered
// (a zombie while dying). So the request is one the kernel made in the background, told apart by
// `odirect` (the read's open flags, fuse_read_in.flags): without O_DIRECT it is readahead, which a
// reader waits for killably, so a killed one exits at once: dying (nobody is left to want it;
// a living reader that wants the page later reads it again). With O_DIRECT it is an
// asynchronous read (AIO, io_uring) whose thread exited while its process may await it: dying
// only when that process (*tgid, once seen) is (process_dying); not known, not dying. When /proc
// is mounted hidepid (the mount's own process cannot see pid 1), a thread hidden looks gone:
// never counted dying then. Only a dying caller's request is cut short (EV_INTERRUPT): a caller
// that handles the signal lives on and gets its answer.
// `opener`: *tgid is the process that opened the request's handle (the thread was gone when the
// request arrived, so its own process is not known, and a task of that id now is another):
// dying only when that process is there and on its way out (process_exiting). A process waiting
// in exit_aio for its reads is exactly that; one gone entirely has no AIO left in flight, so the
// read is another's (a child that inherited the descriptor): not dying.
static int caller_dying (uint32_t pid, int odirect, uint32_t *tgid, int opener) {
  if (pid == 0) return 0;
  if (opener) return *tgid != 0 && access("/proc/1/status", R_OK) == 0 && process_exiting(*tgid);
  char buf[4096];
  if (proc_read(pid, "status", buf, sizeof buf) < 0) {
    if (errno != ENOENT && errno != ESRCH) return 0;
    if (access("/proc/1/status", R_OK) != 0) return 0; // hidepid: cannot tell gone from hidden
    if (!odirect) return 1;
    return *tgid != 0 && process_dying(*tgid);
  }
  if (*tgid == 0) {
    const char *at = strstr(buf, "\nTgid:\t");
    if (at != NULL) *tgid = (uint32_t)strtoul(at + 7, NULL, 10);
  }
  return status_dying(buf);
}

// The process of thread `pid` (0 when it is gone or not known).
static uint32_t tgid_of (uint32_t pid) {
  uint32_t tgid = 0;
  (void)caller_dying(pid, 1, &tgid, 0);
  return tgid;
}

// Under reply_mu: the opener of O_DIRECT handle fh, or 0.
static uint32_t opener_of_locked (mount_t *m, uint64_t fh) {
  for (opener_t *o = m->openers[fh % OPENER_BUCKETS]; o != NULL; o = o->next) {
    if (o->fh == fh) return o->tgid;
  }
  return 0;
}

// An O_DIRECT open made handle fh for thread pid: its process is kept until the handle's release.
static void opener_note (mount_t *m, uint64_t fh, uint32_t pid) {
  uint32_t tgid = tgid_of(pid);
  if (tgid == 0) return;
  opener_t *o = calloc(1, sizeof(opener_t));
  if (o == NULL) return;
  o->fh = fh;
  o->tgid = tgid;
  pthread_mutex_lock(&m->reply_mu);
  o->next = m->openers[fh % OPENER_BUCKETS];
  m->openers[fh % OPENER_BUCKETS] = o;
  pthread_mutex_unlock(&m->reply_mu);
}

// Handle fh was released: its opener, if kept, goes (all of them at the mount's end: fh < 0).
static void opener_drop (mount_t *m, double fh) {
  pthread_mutex_lock(&m->reply_mu);
  for (int b = 0; b < OPENER_BUCKETS; b++) {
    if (fh >= 0 && (uint64_t)fh % OPENER_BUCKETS != (uint64_t)b) continue;
    for (opener_t **at = &m->openers[b]; *at != NULL;) {
      opener_t *o = *at;
      if (fh >= 0 && o->fh != (uint64_t)fh) { at = &o->next; continue; }
      *at = o->next;
      free(o);
    }
  }
  pthread_mutex_unlock(&m->reply_mu);
}

static double next_seq (mount_t *m) {
  pthread_mutex_lock(&m->reply_mu);
  double seq = ++m->next_seq;
  pthread_mutex_unlock(&m->reply_mu);
  return seq;
}

// A request whose caller is dying: JS answers it EINTR and stops what it can of it (fuse/index.ts).
static void tell_killed (mount_t *m, double seq) {
  pthread_mutex_lock(&m->reply_mu);
  m->killed++;
  pthread_mutex_unlock(&m->reply_mu);
  post_event(m, EV_INTERRUPT, seq);
}

static mount_t *current_mount (void) {
  return (mount_t *)fuse_get_context()->private_data;
}

// Requests that make written bytes durable here: their work is this host's disk and CPU, which
// always ends, so they get the longer sync deadline (an EIO from fsync tells an application its
// data is lost, which a busy disk never makes true). Mirrors SYNC_OPS in fuse/index.ts.
static int is_sync_op (int op) {
  return op == OP_WRITE || op == OP_FLUSH || op == OP_FSYNC || op == OP_RELEASE || op == OP_FSYNCDIR || op == OP_FALLOCATE;
}

// Changes of a name (and opens that truncate or create), which JS answers only with what the
// Volume did (WHOLE_ON_INTERRUPT in fuse/index.ts): at the request deadline JS cancels the change
// if it has not been stamped yet, else waits for it to be applied (a local op log write, the
// work of the sync requests) and answers success. An EIO from here at the request deadline would
// tell the caller, and libfuse's node tree, the change failed while the Volume applies it: so
// they wait for JS as long as the sync requests do.
static int is_settled_op (const req_t *r) {
  switch (r->op) {
    case OP_MKNOD: case OP_MKDIR: case OP_UNLINK: case OP_RMDIR: case OP_SYMLINK: case OP_RENAME:
    case OP_LINK: case OP_CREATE:
      return 1;
    case OP_OPEN:
      return ((int)r->n[0] & (O_TRUNC | O_CREAT)) != 0;
    default:
      return 0;
  }
}

// Requests JS runs even when dispatch gave them up before JS got them (call_js): the kernel
// forgets the handle a RELEASE or RELEASEDIR names whatever the answer, so one never run leaves
// its Volume handle open until the mount ends (a file's writes held in it uncommitted), and a
// FLUSH commits what the handle's writes left. Their caller told EIO was told of no change the
// late run then makes (a close's EIO is no promise the data is lost).
static int runs_late (int op) {
  return op == OP_RELEASE || op == OP_RELEASEDIR || op == OP_FLUSH;
}

// Hands r to JS and waits for the answer; returns the result (>= 0 or -errno).
static int dispatch (req_t *r) {
  if (r == NULL) return -ENOMEM;
  after_clear();
  mount_t *m = current_mount();
  struct fuse_context *c = fuse_get_context();
  r->uid = c->uid;
  r->gid = c->gid;
  r->umask = c->umask;
  r->pid = (uint32_t)c->pid;
  r->seq = next_seq(m);
  r->refs = 2;
  if (napi_call_threadsafe_function(m->tsfn, r, napi_tsfn_blocking) != napi_ok) {
    r->refs = 1;
    req_unref(r);
    return -EIO;
  }
  struct timespec deadline;
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  double wait = (is_sync_op(r->op) || is_settled_op(r) ? m->sync_timeout_ms : m->timeout_ms) + NATIVE_GRACE_MS;
  deadline.tv_sec += (time_t)(wait / 1000);
  deadline.tv_nsec += (long)((long long)wait % 1000) * 1000000L;
  if (deadline.tv_nsec >= 1000000000L) { deadline.tv_sec++; deadline.tv_nsec -= 1000000000L; }
  // woken every INTERRUPT_POLL_MS to look whether the kernel interrupted the request (libfuse
  // sets the flag fuse_interrupted() reads), and then whether its caller is dying: once it is,
  // JS is told (tell_killed), once, and answers it
  int killed = 0, seen = 0;
  pthread_mutex_lock(&r->mu);
  while (!r->done) {
    struct timespec now, until;
    clock_gettime(CLOCK_MONOTONIC, &now);
    until = now;
    until.tv_nsec += INTERRUPT_POLL_MS * 1000000L;
    if (until.tv_nsec >= 1000000000L) { until.tv_sec++; until.tv_nsec -= 1000000000L; }
    int last = ts_not_after(&deadline, &until);
    if (last) until = deadline;
    if (pthread_cond_timedwait(&r->cv, &r->mu, &until) == ETIMEDOUT && !r->done) {
      if (last) {
        r->abandoned = 1;
        r->result = -EIO;
        pthread_mutex_unlock(&r->mu);
        pthread_mutex_lock(&m->reply_mu);
        m->worker_expired++;
        pthread_mutex_unlock(&m->reply_mu);
        pthread_mutex_lock(&r->mu);
        break;
      }
      if (!killed && fuse_interrupted()) {
        pthread_mutex_unlock(&r->mu);
        if (!seen) {
          seen = 1;
          pthread_mutex_lock(&m->reply_mu);
          m->worker_interrupted++;
          pthread_mutex_unlock(&m->reply_mu);
        }
        // a synchronous request: its caller's thread stays until it is answered (odirect 1 and
        // no tgid: a thread gone is never taken for dying here)
        uint32_t tgid = 0;
        killed = caller_dying(r->pid, 1, &tgid, 0);
        if (killed) tell_killed(m, r->seq);
        pthread_mutex_lock(&r->mu);
      }
    }
  }
  int res = r->result;
  pthread_mutex_unlock(&r->mu);
  return res;
}

static int finish (req_t *r, int res) {
  // done and not abandoned (res is -EIO otherwise): `after` was written before `done`
  if (res == 0 && r->has_after) after_keep(r->op == OP_LINK ? r->path2 : r->path, &r->after);
  req_unref(r);
  return res;
}

// libfuse gives each name of a hard-linked file its own kernel inode: when one changes, JS
// names the others, whose cached attributes and pages are refreshed here before replying.
static void refresh_missed (mount_t *m, const char *path);
static int finish_refresh (req_t *r, int res) {
  if (res == 0) {
    for (uint32_t i = 0; i < r->count; i++) {
      if (fuse_invalidate_path(fuse_get_context()->fuse, r->names[i]) == -ENOENT) refresh_missed(current_mount(), r->names[i]);
    }
  }
  return finish(r, res);
}

// A lock owner for JS (n[3] of OP_WRITE, n[1] of OP_FLUSH): the kernel's id of the caller's file
// table (a process, its threads alike; a forked child has its own), 64 bits folded into the 53 a
// double holds whole (it only tells owners apart). A FLUSH always names the closing one; a WRITE
// sent direct names its writer (FUSE_WRITE_LOCKOWNER), one through the page cache none (-1).
// fuse/ops.ts hands both to the Volume: a flush of one owner keeps back another owner's last
// appends through the same handle (a forked child closing its copy of the fd between the pieces
// of its parent's write(2): node/open-file.ts `tail`)
static double owner_num (uint64_t owner) {
  return (double)((owner ^ (owner >> 53)) & ((1ULL << 53) - 1));
}
static double fh_of (struct fuse_file_info *fi) {
  return fi != NULL ? (double)fi->fh : -1;
}

static long long mono_ns (void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
}

// The slot of `path` in mount_t.looked (FNV-1a).
static unsigned looked_slot (const char *path) {
  uint32_t h = 2166136261u;
  for (const unsigned char *c = (const unsigned char *)path; *c != 0; c++) h = (h ^ *c) * 16777619u;
  return h % LOOKED_SLOTS;
}

static int getattr_js (const char *path, struct stat *st, struct fuse_file_info *fi) {
  if (after_take(path, st)) return 0;
  req_t *r = req_new(OP_GETATTR, path, NULL);
  if (r == NULL) return -ENOMEM;
  r->n[0] = fh_of(fi);
  r->st = st;
  return finish(r, dispatch(r));
}

/** Notes a getattr of `path` begun in mount_t.recent: the entry's index, or -1 (no memory). The
 * oldest answered entry goes (at most MAX_THREADS are unanswered, far fewer than the ring). */
static int recent_begin (mount_t *m, const char *path) {
  char *copy = strdup(path);
  if (copy == NULL) return -1;
  char *old = NULL;
  int at = -1;
  pthread_mutex_lock(&m->recent_mu);
  for (int n = 0; n < RECENT_GETATTRS && at < 0; n++) {
    unsigned k = m->recent_next++ % RECENT_GETATTRS;
    if (!m->recent[k].busy) at = (int)k;
  }
  if (at >= 0) {
    old = m->recent[at].path;
    m->recent[at].path = copy;
    m->recent[at].busy = 1;
    m->recent[at].ok_ns = 0;
    copy = NULL;
  }
  pthread_mutex_unlock(&m->recent_mu);
  free(old);
  free(copy);
  return at;
}

/** The getattr of entry `at` (recent_begin) was answered: res 0, it succeeded now. */
static void recent_end (mount_t *m, int at, int res) {
  if (at < 0) return;
  long long now = res == 0 ? mono_ns() : 0;
  pthread_mutex_lock(&m->recent_mu);
  m->recent[at].busy = 0;
  m->recent[at].ok_ns = now;
  pthread_mutex_unlock(&m->recent_mu);
}

// A getattr by path is noted in mount_t.recent while it is unanswered, and its success stamped
// there: the invalidation thread tells from them whether an invalidation that found no inode may
// have missed one the kernel is making from this answer (see inval_thread). And an answer JS
// gave before a change of the path it then invalidated (an invalidation of the path's slot of
// mount_t.looked pushed while JS answered) is not given: JS is asked again, up to GETATTR_ASKS
// times, so the kernel never makes a new inode from it (most of the window inval_thread's tries
// cover, closed here: no stat sees the old attributes at all).
static int op_getattr (const char *path, struct stat *st, struct fuse_file_info *fi) {
  if (path == NULL) return getattr_js(path, st, fi);
  mount_t *m = current_mount();
  unsigned k = looked_slot(path);
  int at = recent_begin(m, path);
  int res;
  for (int asked = 1; ; asked++) {
    unsigned pushed = atomic_load(&m->looked[k].pushed);
    res = getattr_js(path, st, fi);
    if (res != 0 || asked >= GETATTR_ASKS || atomic_load(&m->looked[k].pushed) == pushed) break;
  }
  recent_end(m, at, res);
  return res;
}

static int op_readlink (const char *path, char *buf, size_t size) {
  req_t *r = req_new(OP_READLINK, path, NULL);
  if (r == NULL) return -ENOMEM;
  r->out = buf;
  r->outsize = size;
  return finish(r, dispatch(r));
}

static int simple (int op, const char *path, const char *path2, double n0, double n1, double n2) {
  req_t *r = req_new(op, path, path2);
  if (r == NULL) return -ENOMEM;
  r->n[0] = n0;
  r->n[1] = n1;
  r->n[2] = n2;
  return finish_refresh(r, dispatch(r));
}

static int op_mknod (const char *path, mode_t mode, dev_t rdev) { return simple(OP_MKNOD, path, NULL, mode, (double)rdev, -1); }
static int op_mkdir (const char *path, mode_t mode) { return simple(OP_MKDIR, path, NULL, mode, -1, -1); }
static int op_rmdir (const char *path) { return simple(OP_RMDIR, path, NULL, -1, -1, -1); }
static int op_symlink (const char *target, const char *path) { return simple(OP_SYMLINK, path, target, -1, -1, -1); }
static int op_link (const char *from, const char *to) { return simple(OP_LINK, from, to, -1, -1, -1); }
static int op_unlink (const char *path) { return simple(OP_UNLINK, path, NULL, -1, -1, -1); }
static int op_rename (const char *from, const char *to, unsigned int flags) { return simple(OP_RENAME, from, to, flags, -1, -1); }
static int op_chmod (const char *path, mode_t mode, struct fuse_file_info *fi) { return simple(OP_CHMOD, path, NULL, mode, fh_of(fi), -1); }
static int op_chown (const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi) {
  return simple(OP_CHOWN, path, NULL, uid == (uid_t)-1 ? -1.0 : (double)uid, gid == (gid_t)-1 ? -1.0 : (double)gid, fh_of(fi));
}
static int op_truncate (const char *path, off_t size, struct fuse_file_info *fi) { return simple(OP_TRUNCATE, path, NULL, (double)size, fh_of(fi), -1); }
static int op_flush (const char *path, struct fuse_file_info *fi) { return simple(OP_FLUSH, path, NULL, fh_of(fi), owner_num(fi->lock_owner), -1); }
static int op_release (const char *path, struct fuse_file_info *fi) {
  opener_drop(current_mount(), fh_of(fi));
  return simple(OP_RELEASE, path, NULL, fh_of(fi), -1, -1);
}
static int op_fsync (const char *path, int datasync, struct fuse_file_info *fi) { return simple(OP_FSYNC, path, NULL, fh_of(fi), datasync, -1); }
static int op_removexattr (const char *path, const char *name) { return simple(OP_REMOVEXATTR, path, name, -1, -1, -1); }
static int op_access (const char *path, int mask) { return simple(OP_ACCESS, path, NULL, mask, -1, -1); }
// namespace changes are written to the op log, not synced (node/volume.ts): an fsync of a directory makes them
// durable
static int op_fsyncdir (const char *path, int datasync, struct fuse_file_info *fi) { return simple(OP_FSYNCDIR, path, NULL, fh_of(fi), datasync, -1); }
// fallocate(2) on an open file: the mode's flags (the kernel lets FUSE see KEEP_SIZE, PUNCH_HOLE
// and ZERO_RANGE), the range, the handle; fuse/ops.ts does the rest
static int op_fallocate (const char *path, int mode, off_t off, off_t len, struct fuse_file_info *fi) {
  req_t *r = req_new(OP_FALLOCATE, path, NULL);
  if (r == NULL) return -ENOMEM;
  r->n[0] = mode;
  r->n[1] = (double)off;
  r->n[2] = (double)len;
  r->n[3] = fh_of(fi);
  return finish_refresh(r, dispatch(r));
}

static int op_open (const char *path, struct fuse_file_info *fi) {
  req_t *r = req_new(OP_OPEN, path, NULL);
  if (r == NULL) return -ENOMEM;
  r->n[0] = fi->flags;
  r->fi = fi;
  int res = dispatch(r);
  if (res == 0 && (fi->flags & O_DIRECT) != 0) opener_note(current_mount(), fi->fh, r->pid);
  // an O_TRUNC open cut the file: its other names (JS names them) show the new size at once
  return finish_refresh(r, res);
}

static int op_opendir (const char *path, struct fuse_file_info *fi) {
  req_t *r = req_new(OP_OPENDIR, path, NULL);
  if (r == NULL) return -ENOMEM;
  r->n[0] = fi->flags;
  r->fi = fi;
  return finish(r, dispatch(r));
}

static int op_releasedir (const char *path, struct fuse_file_info *fi) { return simple(OP_RELEASEDIR, path, NULL, fh_of(fi), -1, -1); }

static int op_create (const char *path, mode_t mode, struct fuse_file_info *fi) {
  req_t *r = req_new(OP_CREATE, path, NULL);
  if (r == NULL) return -ENOMEM;
  r->n[0] = mode;
  r->n[1] = fi->flags;
  r->fi = fi;
  int res = dispatch(r);
  if (res == 0 && (fi->flags & O_DIRECT) != 0) opener_note(current_mount(), fi->fh, r->pid);
  // an O_TRUNC open cut the file: its other names (JS names them) show the new size at once
  return finish_refresh(r, res);
}

static int op_read (const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  req_t *r = req_new(OP_READ, path, NULL);
  if (r == NULL) return -ENOMEM;
  r->n[0] = fh_of(fi);
  r->n[1] = (double)size;
  r->n[2] = (double)off;
  r->out = buf;
  r->outsize = size;
  return finish(r, dispatch(r));
}

// A WRITE's bits for JS (n[2] of OP_WRITE), values as in fuse/ops.ts. WRITE_KILL_SUIDGID: the
// kernel leaves clearing setuid/setgid to us. A write through the page cache has them cleared by
// the kernel first (file_remove_privs); a direct I/O one (an O_APPEND handle, below, or O_DIRECT)
// does not: the kernel sets FUSE_WRITE_KILL_SUIDGID instead, unless the writer has CAP_FSETID.
// WRITE_APPEND: the file is O_APPEND at this write (the kernel sends the file's flags with each
// WRITE: fcntl F_SETFL sets and clears O_APPEND after open). WRITE_PIECE: a direct write large
// enough to be a piece of a write(2) with more to come (below)
#define WRITE_KILL_SUIDGID 1
#define WRITE_APPEND 2
#define WRITE_PIECE 4
// A direct write(2) comes in pieces: the kernel cuts at max_write bytes and at max_pages pages
// of the caller's memory, and each iovec takes a page of its own there (a writev of 300 iovecs
// of 4 bytes came as 1,024 + 176: review36e). A piece cut at max_pages holds at least a byte a
// page: max_pages bytes (and one cut at max_write, more). A write shorter than that is the last
// piece of its write(2): node/open-file.ts `tail` keeps back only a run whose last piece may go
// on. max_pages is the kernel's, from INIT (piece_pages): 256 with 4 KiB pages and the default
// sysctl, 16 on a 64 KiB-page host, 32 (a writev of 33 one-byte iovecs comes as 32 + 1) with a
// max_write of 128 KiB or a kernel without FUSE_MAX_PAGES
#define PIECE_MIN_DEFAULT 32
static double write_bits (const mount_t *m, const struct fuse_write_in *arg) {
  uint32_t piece_min = __atomic_load_n(&m->piece_min, __ATOMIC_RELAXED);
  return ((arg->write_flags & FUSE_WRITE_KILL_SUIDGID) != 0 ? WRITE_KILL_SUIDGID : 0) + ((arg->flags & O_APPEND) != 0 ? WRITE_APPEND : 0) +
    (arg->size >= piece_min ? WRITE_PIECE : 0);
}

// The kernel's pages a request (max_pages) as it sets them from INIT: libfuse answers FUSE_MAX_PAGES
// with (max_write - 1) / page size + 1 when the kernel offers it, the kernel takes at most its
// fs.fuse.max_pages_limit; without it the kernel's default, 32
static uint32_t piece_pages (const mount_t *m, const struct fuse_init_in *init) {
  if ((init->flags & FUSE_MAX_PAGES) == 0) return PIECE_MIN_DEFAULT;
  long page = sysconf(_SC_PAGESIZE);
  if (page <= 0) page = 4096;
  uint32_t asked = (uint32_t)((m->max_write - 1) / (uint32_t)page + 1);
  uint32_t pages = asked < m->pages_limit ? asked : m->pages_limit;
  return pages > 0 ? pages : 1;
}

// fs.fuse.max_pages_limit, read once at mount (before the session serves anything); 256, the
// kernel's bound before the sysctl came (6.12), when it cannot be read
static uint32_t read_pages_limit (void) {
  uint32_t limit = 256;
  FILE *f = fopen("/proc/sys/fs/fuse/max_pages_limit", "r");
  if (f == NULL) return limit;
  unsigned v;
  if (fscanf(f, "%u", &v) == 1 && v > 0) limit = v;
  fclose(f);
  return limit;
}

static double write_owner (const struct fuse_write_in *arg) {
  return (arg->write_flags & FUSE_WRITE_LOCKOWNER) != 0 ? owner_num(arg->lock_owner) : -1;
}

// libfuse's high-level write gives op_write no write_flags: the loop that hands a WRITE to
// libfuse (write_direct declined it) keeps its bits and its owner here, read by op_write on the
// same thread
static __thread double libfuse_write_bits;
static __thread double libfuse_write_owner;

static int finish_write (req_t *r, int res);

// A write through one name of a hard-linked file refreshes the other names JS gives (finish_write).
static int op_write (const char *path, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  req_t *r = req_new(OP_WRITE, path, NULL);
  if (r == NULL) return -ENOMEM;
  // the kernel buffer is reused after we return: JS gets its own copy
  r->in = malloc(size > 0 ? size : 1);
  if (r->in == NULL) { req_free(r); return -ENOMEM; }
  memcpy(r->in, buf, size);
  r->inlen = size;
  r->n[0] = fh_of(fi);
  r->n[1] = (double)off;
  r->n[2] = libfuse_write_bits;
  r->n[3] = libfuse_write_owner;
  return finish_write(r, dispatch(r));
}

static int op_statfs (const char *path, struct statvfs *sv) {
  req_t *r = req_new(OP_STATFS, path, NULL);
  if (r == NULL) return -ENOMEM;
  r->sv = sv;
  return finish(r, dispatch(r));
}

static int op_setxattr (const char *path, const char *name, const char *value, size_t size, int flags) {
  // without kernel POSIX ACL support these would be stored as plain bytes and bypass chmod
  // (cp -a sets modes through them): refuse, so tools fall back to chmod
  if (strcmp(name, "security.capability") == 0 || strncmp(name, "system.posix_acl_", 17) == 0) return -ENOTSUP;
  req_t *r = req_new(OP_SETXATTR, path, name);
  if (r == NULL) return -ENOMEM;
  r->in = malloc(size > 0 ? size : 1);
  if (r->in == NULL) { req_free(r); return -ENOMEM; }
  memcpy(r->in, value, size);
  r->inlen = size;
  r->n[0] = flags;
  return finish(r, dispatch(r));
}

static int op_getxattr (const char *path, const char *name, char *value, size_t size) {
  // the kernel asks for this on every write (file capabilities); darkfs stores none
  if (strcmp(name, "security.capability") == 0 || strncmp(name, "system.posix_acl_", 17) == 0) return -ENODATA;
  req_t *r = req_new(OP_GETXATTR, path, name);
  if (r == NULL) return -ENOMEM;
  r->n[0] = (double)size;
  r->out = value;
  r->outsize = size;
  return finish(r, dispatch(r));
}

static int op_listxattr (const char *path, char *list, size_t size) {
  req_t *r = req_new(OP_LISTXATTR, path, NULL);
  if (r == NULL) return -ENOMEM;
  r->n[0] = (double)size;
  r->out = list;
  r->outsize = size;
  return finish(r, dispatch(r));
}

static int op_readdir (const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
                       struct fuse_file_info *fi, enum fuse_readdir_flags flags) {
  (void)off; (void)flags;
  req_t *r = req_new(OP_READDIR, path, NULL);
  if (r == NULL) return -ENOMEM;
  r->n[0] = fh_of(fi);
  int res = dispatch(r);
  if (res == 0) {
    // done and not abandoned: names/nums belong to this thread now
    for (uint32_t i = 0; i < r->count; i++) {
      struct stat st;
      memset(&st, 0, sizeof st);
      st.st_ino = (ino_t)r->nums[2 * i];
      st.st_mode = (mode_t)r->nums[2 * i + 1];
      if (filler(buf, r->names[i], &st, 0, 0) != 0) break;
    }
  }
  return finish(r, res);
}

static int op_utimens (const char *path, const struct timespec tv[2], struct fuse_file_info *fi) {
  req_t *r = req_new(OP_UTIMENS, path, NULL);
  if (r == NULL) return -ENOMEM;
  // UTIME_NOW / UTIME_OMIT travel as the nsec value; JS maps them
  r->n[0] = (double)tv[0].tv_sec;
  r->n[1] = (double)tv[0].tv_nsec;
  r->n[2] = (double)tv[1].tv_sec;
  r->n[3] = (double)tv[1].tv_nsec;
  r->n[4] = fh_of(fi);
  return finish_refresh(r, dispatch(r));
}

static void *op_init (struct fuse_conn_info *conn, struct fuse_config *cfg) {
  mount_t *m = current_mount();
  cfg->use_ino = 1;
  cfg->readdir_ino = 1;
  cfg->nullpath_ok = 1;
  // a file unlinked while open keeps its libfuse node under a hidden name until released, so
  // fstat, fchmod, fchown, futimens and f*xattr (which the kernel sends without a file handle)
  // still reach us, by that path; with hard_remove libfuse answers them ESTALE itself. The hidden
  // name is no entry of the volume: fuse/ops.ts unlinks the file and serves the name by inode.
  // nullpath_ok: read, write, flush, fsync, release and ftruncate come by handle, path NULL
  cfg->hard_remove = 0;
  cfg->entry_timeout = m->attr_timeout;
  cfg->attr_timeout = m->attr_timeout;
  cfg->negative_timeout = 0;
  cfg->kernel_cache = 0;
  cfg->auto_cache = 1;
  conn->max_write = m->max_write;
  conn->max_readahead = MAX_WRITE;
  // write_direct needs a write's bytes in the worker's buffer, read from the device with the
  // request: never spliced into a pipe (libfuse does not splice here today, strace shows no
  // splice call; this keeps it so should its defaults change)
  conn->want &= ~FUSE_CAP_SPLICE_READ;
  // the kernel's bound on requests it sends without a caller waiting (readahead, and every
  // O_DIRECT read: it submits them asynchronously): 12 by default. Reads hold no worker here
  // (read_direct), so more may wait on the Volume at once
  conn->max_background = MAX_BACKGROUND;
  conn->congestion_threshold = MAX_BACKGROUND * 3 / 4;
  return m;
}

static const struct fuse_operations ops = {
  .getattr = op_getattr, .readlink = op_readlink, .mknod = op_mknod, .mkdir = op_mkdir,
  .unlink = op_unlink, .rmdir = op_rmdir, .symlink = op_symlink, .rename = op_rename,
  .link = op_link, .chmod = op_chmod, .chown = op_chown, .truncate = op_truncate,
  .open = op_open, .read = op_read, .write = op_write, .statfs = op_statfs, .flush = op_flush,
  .release = op_release, .fsync = op_fsync, .setxattr = op_setxattr, .getxattr = op_getxattr,
  .listxattr = op_listxattr, .removexattr = op_removexattr, .readdir = op_readdir, .opendir = op_opendir, .releasedir = op_releasedir,
  .fsyncdir = op_fsyncdir, .init = op_init, .access = op_access, .create = op_create,
  .utimens = op_utimens, .fallocate = op_fallocate
};

// ---- JS thread side ----

#define NAPI(call) do { if ((call) != napi_ok) { napi_throw_error(env, NULL, #call " failed"); return NULL; } } while (0)

// The finalizer of a Buffer made over bytes that start inside an allocation: hint is the allocation.
static void free_data (napi_env env, void *data, void *hint) { (void)env; (void)data; free(hint); }

static void post_event (mount_t *m, int ev, double n0) {
  req_t *r = calloc(1, sizeof(req_t));
  if (r == NULL) return;
  r->op = ev;
  r->n[0] = n0;
  if (napi_call_threadsafe_function(m->tsfn, r, napi_tsfn_blocking) != napi_ok) free(r);
}

static void call_js (napi_env env, napi_value js_cb, void *context, void *data) {
  (void)context;
  req_t *r = data;
  if (r->op >= EV_MOUNTED) {
    if (env != NULL) {
      napi_value argv[6], undef;
      napi_get_undefined(env, &undef);
      napi_create_int32(env, r->op, &argv[0]);
      napi_get_null(env, &argv[1]);
      argv[2] = argv[3] = argv[4] = argv[1];
      napi_create_double(env, r->n[0], &argv[5]);
      napi_call_function(env, undef, js_cb, 6, argv, NULL);
    }
    free(r);
    return;
  }
  // a request answered before JS got it (past its deadline: a direct one answered by the
  // expiry thread, a worker's given up by dispatch) is not JS's to do: the caller was told EIO,
  // so a change must not be made now. Not so the end of a handle (runs_late): JS runs it all the
  // same, its answer going nowhere
  int skip = env == NULL;
  if (r->direct) {
    pthread_mutex_lock(&r->m->reply_mu);
    skip = skip || r->done;
    r->delivered = 1;
    if (r->done) direct_write_uncount(r);
    pthread_mutex_unlock(&r->m->reply_mu);
  } else if (!skip && !runs_late(r->op)) {
    pthread_mutex_lock(&r->mu);
    skip = r->abandoned;
    pthread_mutex_unlock(&r->mu);
  }
  if (skip) {
    req_fail_js(r, -EIO);
    if (r->direct) direct_unref(r);
    return;
  }
  napi_value argv[14], undef, null;
  napi_get_undefined(env, &undef);
  napi_get_null(env, &null);
  napi_create_int32(env, r->op, &argv[0]);
  napi_create_external(env, r, NULL, NULL, &argv[1]);
  if (r->path != NULL) napi_create_string_utf8(env, r->path, NAPI_AUTO_LENGTH, &argv[2]); else argv[2] = null;
  if (r->path2 != NULL) napi_create_string_utf8(env, r->path2, NAPI_AUTO_LENGTH, &argv[3]); else argv[3] = null;
  if (r->in != NULL) {
    void *copy;
    if (napi_create_external_buffer(env, r->inlen, r->in + r->inoff, free_data, r->in, &argv[4]) == napi_ok) {
      r->in = NULL; // the Buffer owns it now
    } else {
      napi_create_buffer_copy(env, r->inlen, r->in + r->inoff, &copy, &argv[4]);
    }
  } else {
    argv[4] = null;
  }
  for (int i = 0; i < 5; i++) napi_create_double(env, r->n[i], &argv[5 + i]);
  napi_create_uint32(env, r->uid, &argv[10]);
  napi_create_uint32(env, r->gid, &argv[11]);
  napi_create_uint32(env, r->umask, &argv[12]);
  napi_create_double(env, r->seq, &argv[13]);
  if (napi_call_function(env, undef, js_cb, 14, argv, NULL) != napi_ok) {
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    req_fail_js(r, -EIO);
  }
  if (r->direct) direct_unref(r);
}

// A kernel invalidation can block for as long as a request of the same inode is unanswered (the
// kernel holds the pages of a write being sent, for one): it never runs on libuv's thread pool,
// where a few blocked ones would stop the process's file I/O (the op log's writes and fsyncs),
// which the unanswered request itself waits for, until its deadline answers it EIO. Each mount
// has one thread of its own for them, in order, a path queued twice waiting once.
//
// An invalidation may come while the kernel is looking the name up for the first time: the
// kernel asked for the name (LOOKUP), JS answered the getattr before the change, and the change
// is invalidated before the kernel has made the inode from that answer (libfuse has no node of
// the path yet, or the kernel no inode: -ENOENT either way). The kernel guards a GETATTR, and a
// LOOKUP of an inode it has, against an invalidation in flight (its attr_version), but not one
// that makes a new inode: lost, the invalidation leaves the old attributes cached for the
// attribute time. So an invalidation that finds no inode while a getattr of its very path is
// unanswered, or one succeeded within RECENT_NS, is tried again (0.1, 0.2, 0.4 ... ms, at most
// INVAL_RETRY_MAX_US apart) until it finds the inode (the answer's attributes are dropped then,
// and any later LOOKUP is guarded) or no getattr of the path is unanswered and none succeeded
// within RECENT_NS: the kernel makes the inode from a reply as it gets it, so by then any inode
// made from an old answer has been made (and the try before found it) or will never be. A path
// the kernel never asked for (a peer's new file) is not tried again. A refresh of a hard-linked
// file's other names that found no inode joins the tries the same way (refresh_missed). Tries
// wait in a short list of their own (INVAL_RETRIES_MAX): a try due runs, but never two in a row
// while the queue has invalidations waiting; a run of their path from the queue settles them.
// Pushes never wait for any of it (inval_push), nor for the look up in mount_t.recent (under
// recent_mu, not inval_mu).

/** Under inval_mu: takes `path`'s entry off the retry list (or NULL). */
static inval_t *inval_retry_take (mount_t *m, const char *path) {
  for (inval_t **at = &m->inval_retry; *at != NULL; at = &(*at)->next) {
    inval_t *i = *at;
    if (strcmp(i->path, path) != 0) continue;
    *at = i->next;
    m->inval_retries--;
    return i;
  }
  return NULL;
}

/** Under inval_mu: i goes on the retry list, its try due after its wait (the list is bounded). */
static void inval_retry_put (mount_t *m, inval_t *i, long long now) {
  if (m->inval_retries >= INVAL_RETRIES_MAX) {
    // the one longest waiting goes (the list is short unless the kernel forgets much at once)
    inval_t **oldest = &m->inval_retry;
    for (inval_t **at = &m->inval_retry; *at != NULL; at = &(*at)->next) if ((*at)->since_ns < (*oldest)->since_ns) oldest = at;
    inval_t *o = *oldest;
    *oldest = o->next;
    m->inval_retries--;
    free(o->path);
    free(o);
  }
  i->due_ns = now + (long long)i->wait_us * 1000LL;
  i->next = m->inval_retry;
  m->inval_retry = i;
  m->inval_retries++;
}

/** May the kernel still make an inode of `path`, with attributes it would keep, from a getattr
 * answered before an invalidation that found none: one of that very path unanswered, or answered
 * within RECENT_NS? (Not under inval_mu: RECENT_GETATTRS compares under recent_mu.) */
static int inval_may_miss (mount_t *m, const char *path, long long now) {
  if (m->attr_timeout <= 0) return 0; // no attributes cached
  int may = 0;
  pthread_mutex_lock(&m->recent_mu);
  for (int k = 0; k < RECENT_GETATTRS && !may; k++) {
    const char *p = m->recent[k].path;
    if (p == NULL || strcmp(p, path) != 0) continue;
    long long ok = m->recent[k].ok_ns;
    may = m->recent[k].busy || (ok != 0 && now - ok < RECENT_NS);
  }
  pthread_mutex_unlock(&m->recent_mu);
  return may;
}

static void *inval_thread (void *arg) {
  mount_t *m = arg;
  int retried = 0; // the last run was a try again
  for (;;) {
    pthread_mutex_lock(&m->inval_mu);
    inval_t *i = NULL;
    int retry = 0;
    for (;;) {
      // a try due goes first (a busy queue must not hold it past its window), but never two in a
      // row while the queue waits (tries due must not starve it), then the queue
      long long now = mono_ns(), due = 0;
      inval_t **first = NULL;
      for (inval_t **at = &m->inval_retry; *at != NULL && !m->inval_stop; at = &(*at)->next) {
        if (first == NULL || (*at)->due_ns < due) { first = at; due = (*at)->due_ns; }
      }
      if (first != NULL && due <= now && !(retried && m->inval_head != NULL)) {
        i = *first;
        *first = i->next;
        m->inval_retries--;
        m->inval_retried++;
        retry = 1;
        break;
      }
      if (m->inval_head != NULL) {
        i = m->inval_head;
        m->inval_head = i->next;
        if (m->inval_head == NULL) m->inval_tail = NULL;
        break;
      }
      if (m->inval_stop) break;
      if (first == NULL) { pthread_cond_wait(&m->inval_cv, &m->inval_mu); continue; }
      struct timespec until = { (time_t)(due / 1000000000LL), (long)(due % 1000000000LL) };
      pthread_cond_timedwait(&m->inval_cv, &m->inval_mu, &until);
    }
    if (i == NULL) {
      // stopped: what waits to be tried again goes
      while (m->inval_retry != NULL) {
        inval_t *r = m->inval_retry;
        m->inval_retry = r->next;
        free(r->path);
        free(r);
      }
      m->inval_retries = 0;
      pthread_mutex_unlock(&m->inval_mu);
      return NULL;
    }
    retried = retry;
    pthread_mutex_unlock(&m->inval_mu);
    int rc = 0;
    pthread_rwlock_rdlock(&m->lock);
    if (m->fuse != NULL && !m->inval_stop) rc = fuse_invalidate_path(m->fuse, i->path);
    pthread_rwlock_unlock(&m->lock);
    long long now = mono_ns();
    int may_miss = rc == -ENOENT && !m->inval_stop && inval_may_miss(m, i->path, now);
    pthread_mutex_lock(&m->inval_mu);
    // a run of the path from the queue settles the try waiting for it: that try goes on (its
    // wait started over) when this run found no inode either, else it goes
    inval_t *waiting = retry ? NULL : inval_retry_take(m, i->path);
    if (rc == 0 && retry) m->inval_recovered++;
    if (rc == -ENOENT && !m->inval_stop) {
      if (!retry) {
        if (waiting != NULL) { free(i->path); free(i); i = waiting; waiting = NULL; }
        i->since_ns = now;
        i->wait_us = INVAL_RETRY_US;
      } else {
        i->wait_us = i->wait_us * 2 > INVAL_RETRY_MAX_US ? INVAL_RETRY_MAX_US : i->wait_us * 2;
      }
      if (may_miss) { inval_retry_put(m, i, now); i = NULL; }
    }
    pthread_mutex_unlock(&m->inval_mu);
    if (waiting != NULL) { free(waiting->path); free(waiting); }
    if (i != NULL) { free(i->path); free(i); }
  }
}

// A refresh of another name of a hard-linked file before a change through one name is answered
// (refresh_run, finish_write, finish_refresh) meets the same race as a peer's invalidation: the
// kernel may be looking that name up for the first time, from a getattr answered before the
// change, and the refresh finds no inode (-ENOENT). It is tried again as a peer's invalidation
// that found none is (inval_thread): when inval_may_miss, it goes on the retry list, its first
// try due after INVAL_RETRY_US (a try of the path waiting there already starts over). Never
// waits for the tries; not under m->lock nor inval_mu (the look up takes recent_mu).
static void refresh_missed (mount_t *m, const char *path) {
  // a getattr of the path in flight asks JS again (op_getattr), as after a peer's push
  atomic_fetch_add(&m->looked[looked_slot(path)].pushed, 1);
  long long now = mono_ns();
  if (!inval_may_miss(m, path, now)) return;
  inval_t *n = calloc(1, sizeof(inval_t));
  char *p = n != NULL ? strdup(path) : NULL;
  if (p == NULL) { free(n); return; }
  n->path = p;
  n->since_ns = now;
  n->wait_us = INVAL_RETRY_US;
  pthread_mutex_lock(&m->inval_mu);
  inval_t *waiting = NULL;
  if (!m->inval_stop) {
    waiting = inval_retry_take(m, path);
    inval_retry_put(m, n, now);
    n = NULL;
    // the thread may be waiting for a later try, or for nothing
    pthread_cond_signal(&m->inval_cv);
  }
  pthread_mutex_unlock(&m->inval_mu);
  if (waiting != NULL) { free(waiting->path); free(waiting); }
  if (n != NULL) { free(n->path); free(n); }
}

// A direct write through one name of a hard-linked file: the kernel caches the attributes and
// pages of each name apart (libfuse gives each its own kernel inode), so the other names JS gave
// (`names`, taken over) are invalidated before the write is answered: when write(2) returns, a
// stat or a read through another name sees its bytes, size and mtime. An invalidation waits for
// the pages a write in flight through that name holds locked, until its answer: so not on the
// JS thread, which answers the reads and writes it may wait for, and not on the invalidation
// thread, whose queue may hold an invalidation waiting for this very write's pages. On a thread
// of its own (refresh_run), which then sends the reply and lets the request go (JS's reference,
// taken over). One such write at a time per mount (m->refreshing): another one is answered at
// once and its names refreshed after (inval_push), or two writes through two names, each
// waiting for the other's pages, would wait for each other until their deadline.
// Returns 0 when the deadline answered the write already.
static void *refresh_run (void *arg) {
  inval_t *i = arg;
  req_t *r = i->reply;
  mount_t *m = r->m;
  pthread_rwlock_rdlock(&m->lock);
  for (uint32_t k = 0; k < i->count; k++) {
    // a name that found no inode is kept for refresh_missed (not under m->lock)
    if (m->fuse != NULL && !m->inval_stop && fuse_invalidate_path(m->fuse, i->names[k]) == -ENOENT) continue;
    free(i->names[k]);
    i->names[k] = NULL;
  }
  pthread_rwlock_unlock(&m->lock);
  for (uint32_t k = 0; k < i->count; k++) {
    if (i->names[k] == NULL) continue;
    refresh_missed(m, i->names[k]);
    free(i->names[k]);
  }
  direct_reply(r, 0, &i->out, sizeof i->out);
  direct_unref(r);
  pthread_mutex_lock(&m->inval_mu);
  m->refreshing = 0;
  pthread_mutex_unlock(&m->inval_mu);
  free(i->names);
  free(i);
  return NULL;
}

static void inval_push (mount_t *m, char *path);

/** Claims the mount's one refresh a reply may wait for (m->refreshing); 0 when another has it. */
static int refresh_claim (mount_t *m) {
  pthread_mutex_lock(&m->inval_mu);
  int claim = !m->refreshing && !m->inval_stop;
  if (claim) m->refreshing = 1;
  pthread_mutex_unlock(&m->inval_mu);
  return claim;
}

static void refresh_release (mount_t *m) {
  pthread_mutex_lock(&m->inval_mu);
  m->refreshing = 0;
  pthread_mutex_unlock(&m->inval_mu);
}

static int inval_reply (req_t *r, struct fuse_write_out out, char **names, uint32_t count) {
  mount_t *m = r->m;
  if (refresh_claim(m)) {
    inval_t *i = calloc(1, sizeof(inval_t));
    pthread_mutex_lock(&m->reply_mu);
    int open = !r->done;
    pthread_mutex_unlock(&m->reply_mu);
    if (i != NULL) {
      i->reply = r;
      i->out = out;
      i->names = names;
      i->count = count;
      // no signals on it, as on the mount's other threads
      sigset_t all, old;
      sigfillset(&all);
      pthread_sigmask(SIG_BLOCK, &all, &old);
      pthread_attr_t attr;
      pthread_attr_init(&attr);
      pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
      pthread_t t;
      int rc = pthread_create(&t, &attr, refresh_run, i);
      pthread_attr_destroy(&attr);
      pthread_sigmask(SIG_SETMASK, &old, NULL);
      if (rc == 0) return open;
      free(i);
    }
    refresh_release(m);
  }
  // answered at once, its other names refreshed after
  int taken = direct_reply(r, 0, &out, sizeof out);
  direct_unref(r);
  for (uint32_t k = 0; k < count; k++) inval_push(m, names[k]);
  free(names);
  return taken;
}

// A write of libfuse's workers (op_write) refreshes the other names JS gave before its answer, as
// a direct one does (inval_reply): the mount's one refresh a reply waits for, or after the answer.
static int finish_write (req_t *r, int res) {
  if (res < 0 || r->count == 0) return finish(r, res);
  mount_t *m = current_mount();
  if (refresh_claim(m)) {
    for (uint32_t i = 0; i < r->count; i++) {
      if (fuse_invalidate_path(fuse_get_context()->fuse, r->names[i]) == -ENOENT) refresh_missed(m, r->names[i]);
    }
    refresh_release(m);
  } else {
    for (uint32_t i = 0; i < r->count; i++) {
      char *p = strdup(r->names[i]);
      if (p != NULL) inval_push(m, p);
    }
  }
  return finish(r, res);
}

/** Queue an invalidation of `path` (taken over) for the mount's invalidation thread (never waits for it). */
static void inval_push (mount_t *m, char *path) {
  atomic_fetch_add(&m->looked[looked_slot(path)].pushed, 1);
  pthread_mutex_lock(&m->inval_mu);
  int queued = m->inval_stop;
  for (inval_t *i = m->inval_head; i != NULL && !queued; i = i->next) queued = i->path != NULL && strcmp(i->path, path) == 0;
  inval_t *n = queued ? NULL : calloc(1, sizeof(inval_t));
  if (n != NULL) {
    n->path = path;
    if (m->inval_tail != NULL) m->inval_tail->next = n; else m->inval_head = n;
    m->inval_tail = n;
    pthread_cond_signal(&m->inval_cv);
  }
  pthread_mutex_unlock(&m->inval_mu);
  if (n == NULL) free(path);
}

/** The mount ended: its invalidation thread drops what is queued and ends. */
static void inval_stop (mount_t *m) {
  pthread_mutex_lock(&m->inval_mu);
  m->inval_stop = 1;
  pthread_cond_signal(&m->inval_cv);
  pthread_mutex_unlock(&m->inval_mu);
}

// ---- the session loop ----
//
// libfuse's high-level API names every node by a path it builds from the names of the node's
// ancestors in its own node tree. A directory removed by rmdir loses its name there, and with it
// every node below it: a file held open inside (kept under a hidden name, see op_init) or the
// directory itself, held open or a process's cwd. The kernel asks fstat, fchmod, fchown,
// futimens and f*xattr of an open file without its file handle, so libfuse must build the path
// and answers ESTALE itself, where a local disk serves them (nlink 0) until the last close.
// So the kernel's RMDIR never reaches libfuse as one: session_loop rewrites it, in the request
// buffer, into a rename of the directory to a name of its own in the root (RENAME_IS_RMDIR set).
// fuse/ops.ts removes the directory from the Volume for it, as rmdir; libfuse, told it was a
// rename, keeps the node, under a path it can build, until the kernel forgets the inode. The
// reply of both requests is the same (an error code only). The name is unique in the mount and
// unguessable (a random prefix per mount), so it names no entry of the Volume.

typedef struct loop_s {
  struct fuse_session *se;
  mount_t *m;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int workers, idle, error;
  // the workers' threads, for cancelling those blocked reading the device at the end
  pthread_t ids[MAX_THREADS];
  int used[MAX_THREADS];
  uint64_t salt, removed;
} loop_t;

typedef struct worker_s {
  loop_t *l;
  int slot;
  struct fuse_buf buf;
} worker_t;

static void rmdir_as_rename (loop_t *l, struct fuse_buf *buf) {
  if ((buf->flags & FUSE_BUF_IS_FD) != 0 || buf->size < sizeof(struct fuse_in_header)) return;
  struct fuse_in_header *in = buf->mem;
  if (in->opcode != FUSE_RMDIR || in->len != buf->size || buf->size <= sizeof *in) return;
  const char *name = (const char *)(in + 1);
  size_t namelen = strnlen(name, buf->size - sizeof *in);
  if (namelen == buf->size - sizeof *in) return; // not terminated: libfuse refuses it as it is
  char as[64];
  uint64_t n = __atomic_add_fetch(&l->removed, 1, __ATOMIC_RELAXED);
  int aslen = snprintf(as, sizeof as, ".darkfs-removed-%016llx-%llu", (unsigned long long)l->salt, (unsigned long long)n);
  size_t len = sizeof *in + sizeof(struct fuse_rename2_in) + namelen + 1 + (size_t)aslen + 1;
  // at most ~1.2 KiB (FUSE names are at most 1024 bytes), well inside the smallest request buffer
  if (namelen > 1024) return;
  char *at = (char *)(in + 1);
  // the old name moves up past the rename2 header; memmove, the ranges overlap
  memmove(at + sizeof(struct fuse_rename2_in), name, namelen + 1);
  struct fuse_rename2_in *arg = (struct fuse_rename2_in *)at;
  memset(arg, 0, sizeof *arg);
  arg->newdir = FUSE_ROOT_ID;
  arg->flags = RENAME_IS_RMDIR;
  memcpy(at + sizeof *arg + namelen + 1, as, (size_t)aslen + 1);
  in->opcode = FUSE_RENAME2;
  in->len = (uint32_t)len;
  buf->size = len;
}

static int loop_spawn (loop_t *l);

static int ts_not_after (const struct timespec *a, const struct timespec *b) {
  return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec <= b->tv_nsec);
}

// A direct request's record, from the kernel's header (read_direct, write_direct): two references,
// call_js's and JS's answer's (direct_unref).
static req_t *direct_req_new (mount_t *m, int op, const struct fuse_in_header *in) {
  req_t *r = calloc(1, sizeof(req_t));
  if (r == NULL) return NULL;
  r->op = op;
  r->direct = 1;
  r->unique = in->unique;
  r->m = m;
  r->uid = in->uid;
  r->gid = in->gid;
  r->pid = in->pid;
  r->seq = next_seq(m);
  r->n[0] = r->n[1] = r->n[2] = r->n[3] = r->n[4] = -1;
  r->refs = 2;
  return r;
}

// Under reply_mu: r is in flight, at the tail of its list, with its deadline: the mount's
// request deadline for a read, its sync deadline for a write (as dispatch waits for the requests
// of libfuse's workers), and the same grace past it.
static void direct_track (req_t *r) {
  mount_t *m = r->m;
  int k = r->op == OP_WRITE;
  m->direct_inflight++;
  clock_gettime(CLOCK_MONOTONIC, &r->deadline);
  r->since = r->deadline;
  double wait = (k ? m->sync_timeout_ms : m->timeout_ms) + NATIVE_GRACE_MS;
  r->deadline.tv_sec += (time_t)(wait / 1000);
  r->deadline.tv_nsec += (long)((long long)wait % 1000) * 1000000L;
  if (r->deadline.tv_nsec >= 1000000000L) { r->deadline.tv_sec++; r->deadline.tv_nsec -= 1000000000L; }
  r->prev = m->direct_tail[k];
  r->next = NULL;
  if (r->prev != NULL) r->prev->next = r; else m->direct_head[k] = r;
  m->direct_tail[k] = r;
  // the expiry thread is woken only when this request's first mark (its deadline, or for a read
  // the READ_WATCH_MS at which its caller is first looked at) comes before the one it waits for
  // (one wake per mark's length, not per request: all of a kind have the same)
  struct timespec at = r->deadline;
  if (!k || r->odirect) {
    struct timespec watch = r->since;
    watch.tv_sec += READ_WATCH_MS / 1000;
    watch.tv_nsec += (READ_WATCH_MS % 1000) * 1000000L;
    if (watch.tv_nsec >= 1000000000L) { watch.tv_sec++; watch.tv_nsec -= 1000000000L; }
    if (ts_not_after(&watch, &at)) at = watch;
  }
  if (!m->reap_timed || !ts_not_after(&m->reap_at, &at)) {
    m->reap_at = at;
    m->reap_timed = 1;
    pthread_cond_signal(&m->reap_cv);
  }
}

// After direct_track: r goes to JS (call_js), or is answered here EIO when JS cannot be reached.
static void direct_go (req_t *r) {
  if (napi_call_threadsafe_function(r->m->tsfn, r, napi_tsfn_blocking) != napi_ok) {
    pthread_mutex_lock(&r->m->reply_mu);
    r->delivered = 1; // never will be
    direct_reply_locked(r, -EIO, NULL, 0);
    direct_write_uncount(r); // the deadline may have answered it already
    pthread_mutex_unlock(&r->m->reply_mu);
    free(r->in);
    free(r);
  }
}

// An O_DIRECT read's or write's caller may be a thread that submits it asynchronously (AIO,
// io_uring) and exits before it is first looked at: its process is noted now, for caller_dying
// to look at then (each worker keeps the last thread's, so a run of requests of one thread costs
// one /proc read).
// A thread already gone (it exited right after submitting) leaves the handle's opener
// (opener_note) in its place, looked at as such (caller_dying).
static void note_process (req_t *r, uint64_t fh) {
  static __thread uint32_t last_pid, last_tgid;
  if (r->pid != last_pid) {
    last_pid = r->pid;
    last_tgid = tgid_of(r->pid);
  }
  r->tgid = last_tgid;
  if (r->tgid == 0) {
    pthread_mutex_lock(&r->m->reply_mu);
    r->tgid = opener_of_locked(r->m, fh);
    pthread_mutex_unlock(&r->m->reply_mu);
    r->opener = r->tgid != 0;
    last_pid = 0; // not the thread's own: looked up again for its next request
  }
}

// The kernel's READ, taken from libfuse: a read needs nothing of libfuse's node tree (reads come
// by handle: nullpath_ok, and libfuse's read hands the kernel's fh through as it is), so it goes
// to JS as op_read's request would, and the worker goes back to the device at once. JS's answer
// is written to the device from the JS thread (js_reply, direct_reply): no worker waits on a
// condition variable for it, no worker is woken to send it, and reads in flight hold no worker
// (they are bounded by the kernel, not by MAX_THREADS). Returns 0 when libfuse is to take it.
static int read_direct (loop_t *l, const struct fuse_buf *buf) {
  const struct fuse_in_header *in = buf->mem;
  if (in->len != buf->size || buf->size < sizeof *in + sizeof(struct fuse_read_in)) return 0;
  const struct fuse_read_in *arg = (const struct fuse_read_in *)(in + 1);
  mount_t *m = l->m;
  req_t *r = direct_req_new(m, OP_READ, in);
  if (r == NULL) return 0;
  r->n[0] = (double)arg->fh;
  r->n[1] = (double)arg->size;
  r->n[2] = (double)arg->offset;
  r->outsize = arg->size;
  r->odirect = (arg->flags & O_DIRECT) != 0;
  if (r->odirect) note_process(r, arg->fh);
  pthread_mutex_lock(&m->reply_mu);
  direct_track(r);
  pthread_mutex_unlock(&m->reply_mu);
  direct_go(r);
  return 1;
}

// The kernel's WRITE, taken from libfuse as a READ is (read_direct; writes come by handle too,
// and libfuse's write keeps no state). A write that fills most of the worker's request buffer
// (MAX_WRITE + a page) goes to JS in that buffer, which JS's Buffer then owns (call_js; libfuse
// allocates the worker a new one for its next request): the kernel's copy into it is the only
// one. A smaller write is copied out into an allocation of its own size and the worker keeps its
// buffer: JS may hold a write's bytes for long (node/open-file.ts keeps them as a patch), and
// 4 KiB writes each holding a 1 MiB buffer pinned 256 times their bytes. JS's answer (the count
// written) is written to the device from the JS thread. Past the mount's cap on direct writes
// unanswered or not yet taken by JS (count or bytes) the write is left to libfuse, whose worker then waits for it. Writes
// of the kernel's writeback cache (FUSE_WRITE_CACHE, never asked for here) are left to libfuse.
// Returns 0 when libfuse is to take it.
static int write_direct (loop_t *l, struct fuse_buf *buf) {
  struct fuse_in_header *in = buf->mem;
  if (in->len != buf->size || buf->size < sizeof *in + sizeof(struct fuse_write_in)) return 0;
  const struct fuse_write_in *arg = (const struct fuse_write_in *)(in + 1);
  size_t off = sizeof *in + sizeof *arg;
  size_t size = arg->size;
  if ((arg->write_flags & FUSE_WRITE_CACHE) != 0 || off + size != buf->size) return 0;
  mount_t *m = l->m;
  int hand = size >= MAX_WRITE / 2;
  req_t *r = direct_req_new(m, OP_WRITE, in);
  if (r == NULL) return 0;
  if (!hand) {
    r->in = malloc(size > 0 ? size : 1);
    if (r->in == NULL) { free(r); return 0; }
  }
  r->n[0] = (double)arg->fh;
  r->n[1] = (double)arg->offset;
  r->n[2] = write_bits(m, arg);
  r->n[3] = write_owner(arg);
  r->inlen = size;
  // an O_DIRECT write is sent in the background (async_dio), never interrupted: its caller is
  // watched as a read's is (reap_thread)
  r->odirect = (arg->flags & O_DIRECT) != 0;
  if (r->odirect) note_process(r, arg->fh);
  pthread_mutex_lock(&m->reply_mu);
  if (m->direct_writes >= m->direct_write_cap || m->direct_write_bytes + size > DIRECT_WRITE_BYTES) {
    m->writes_over_cap++;
    pthread_mutex_unlock(&m->reply_mu);
    free(r->in);
    free(r);
    return 0;
  }
  m->direct_writes++;
  m->direct_write_bytes += size;
  r->counted = 1;
  if (m->direct_writes > m->direct_writes_max) m->direct_writes_max = m->direct_writes;
  if (hand) m->writes_handed++; else m->writes_copied++;
  if (hand) {
    r->in = buf->mem;
    r->inoff = off;
    // the buffer is the request's now: fuse_session_receive_buf allocates the worker another
    buf->mem = NULL;
  } else {
    memcpy(r->in, (char *)buf->mem + off, size);
  }
  direct_track(r);
  pthread_mutex_unlock(&m->reply_mu);
  direct_go(r);
  return 1;
}

// The kernel's INTERRUPT: a signal reached the process waiting on a request. A direct request
// is not cut short by it: the kernel sends it for any signal the caller handles, not only a fatal
// one, and gives an EINTR answer to the caller as it is (SA_RESTART does not restart it). Callers
// of regular files do not expect EINTR: a page fault of a mapped file answered so is SIGBUS (a
// Go program's preemption signal lands anywhere), and an O_APPEND writer that retries a write
// whose bytes were applied appends them twice. So, as libfuse does without -o intr, the request
// goes on and is answered by JS or by its deadline (reap_thread); the interrupt is counted. No
// reply to the interrupt itself (libfuse sends none either). An interrupt of no direct request in
// flight goes to libfuse (returns 0): one of libfuse's own requests, or one answered already.
// Under reply_mu: the direct request in flight the kernel numbered `unique`, or NULL.
static req_t *direct_find_locked (mount_t *m, uint64_t unique) {
  for (int k = 0; k < 2; k++) {
    for (req_t *r = m->direct_head[k]; r != NULL; r = r->next) {
      if (r->unique == unique) return r;
    }
  }
  return NULL;
}

static int direct_interrupt (loop_t *l, const struct fuse_buf *buf) {
  const struct fuse_in_header *in = buf->mem;
  if (in->len != buf->size || buf->size < sizeof *in + sizeof(struct fuse_interrupt_in)) return 0;
  uint64_t unique = ((const struct fuse_interrupt_in *)(in + 1))->unique;
  mount_t *m = l->m;
  int found = 0, look = 0, odirect = 0, opener = 0;
  uint32_t pid = 0, tgid = 0;
  pthread_mutex_lock(&m->reply_mu);
  req_t *r = direct_find_locked(m, unique);
  if (r != NULL) {
    found = 1;
    m->direct_interrupted++;
    r->interrupted = 1;
    look = !r->killed;
    pid = r->pid;
    odirect = r->odirect;
    tgid = r->tgid;
    opener = r->opener;
  }
  pthread_mutex_unlock(&m->reply_mu);
  if (!look) return found;
  // its caller dying (killed, or a signal it does not handle): JS answers it EINTR; else the
  // expiry thread looks again every INTERRUPT_POLL_MS (a SIGKILL may come later). /proc is read
  // out of reply_mu (JS's answers take it), as reap_thread does: the request is found again after
  int dying = caller_dying(pid, odirect, &tgid, opener);
  pthread_mutex_lock(&m->reply_mu);
  r = direct_find_locked(m, unique);
  if (r != NULL && r->tgid == 0 && !opener) r->tgid = tgid;
  if (r != NULL && !r->killed && dying) {
    r->killed = 1;
    m->killed++;
    post_event(m, EV_INTERRUPT, r->seq);
  } else if (r != NULL && !r->killed) {
    pthread_cond_signal(&m->reap_cv);
  }
  pthread_mutex_unlock(&m->reply_mu);
  return found;
}

// The native deadline of direct requests: one thread per mount answers EIO, as dispatch does for
// the requests libfuse's workers wait on, every direct request JS has not answered by its
// deadline (direct_track: the mount's deadline and NATIVE_GRACE_MS; JS's own timer answers at
// the deadline itself, so this one answers only when JS's event loop is stuck or its answer was
// lost). JS's late answer is then dropped (direct_reply). EIO, not ETIMEDOUT: the kernel hands the
// error to read(2)/write(2) as it is, where EIO is the documented "the I/O failed" and what
// every other request past its deadline gets (dispatch, fuse/index.ts).
static void *reap_thread (void *arg) {
  mount_t *m = arg;
  pthread_mutex_lock(&m->reply_mu);
  while (!m->reap_stop) {
    struct timespec now, next;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int have = 0;
    for (int k = 0; k < 2; k++) {
      req_t *r;
      while ((r = m->direct_head[k]) != NULL && ts_not_after(&r->deadline, &now)) {
        direct_reply_locked(r, -EIO, NULL, 0);
        m->direct_expired++;
      }
      if (r != NULL && (!have || ts_not_after(&r->deadline, &next))) { next = r->deadline; have = 1; }
    }
    // interrupted requests whose callers lived on then, and reads older than READ_WATCH_MS: their
    // callers (each once, at most WATCH_MAX a pass) are looked at every INTERRUPT_POLL_MS, out of
    // reply_mu (JS's answers take it), until they are answered; a dying one's requests go to JS.
    // A pass takes the requests not looked at yet this round (watch_round), so with more callers
    // than WATCH_MAX each is looked at in turn, not only the first WATCH_MAX of the lists
    // the callers to look at: thread, kind of read (caller_dying), process once seen
    struct { uint32_t pid, tgid; int odirect, opener; } look[WATCH_MAX];
    int npids = 0, watch = 0, full = 0;
    unsigned round = m->watch_round + 1;
    struct timespec old = now;
    old.tv_sec -= READ_WATCH_MS / 1000;
    old.tv_nsec -= (READ_WATCH_MS % 1000) * 1000000L;
    if (old.tv_nsec < 0) { old.tv_sec--; old.tv_nsec += 1000000000L; }
    for (int k = 0; k < 2; k++) {
      for (req_t *r = m->direct_head[k]; r != NULL; r = r->next) {
        if (r->killed || (!r->interrupted && k == 1 && !r->odirect)) continue;
        if (!r->interrupted && !ts_not_after(&r->since, &old)) {
          // a young read: looked at once it is READ_WATCH_MS old
          struct timespec at = r->since;
          at.tv_sec += READ_WATCH_MS / 1000;
          at.tv_nsec += (READ_WATCH_MS % 1000) * 1000000L;
          if (at.tv_nsec >= 1000000000L) { at.tv_sec++; at.tv_nsec -= 1000000000L; }
          if (!have || ts_not_after(&at, &next)) { next = at; have = 1; }
          continue;
        }
        watch = 1;
        if (r->watched == round) continue;
        int seen = 0;
        for (int i = 0; i < npids && !seen; i++) seen = look[i].pid == r->pid && look[i].odirect == r->odirect && look[i].opener == r->opener && (!r->opener || look[i].tgid == r->tgid);
        if (!seen && npids == WATCH_MAX) { full = 1; continue; }
        if (!seen) { look[npids].pid = r->pid; look[npids].tgid = r->tgid; look[npids].odirect = r->odirect; look[npids].opener = r->opener; npids++; }
        r->watched = round;
      }
    }
    // every watched request looked at in this round: the next pass starts the next one
    if (!full) m->watch_round++;
    if (npids > 0) {
      int dying[WATCH_MAX];
      pthread_mutex_unlock(&m->reply_mu);
      for (int i = 0; i < npids; i++) dying[i] = caller_dying(look[i].pid, look[i].odirect, &look[i].tgid, look[i].opener);
      pthread_mutex_lock(&m->reply_mu);
      for (int k = 0; k < 2; k++) {
        for (req_t *r = m->direct_head[k]; r != NULL; r = r->next) {
          if (r->killed || (!r->interrupted && ((k == 1 && !r->odirect) || !ts_not_after(&r->since, &old)))) continue;
          for (int i = 0; i < npids; i++) {
            if (look[i].pid != r->pid || look[i].odirect != r->odirect || look[i].opener != r->opener || (r->opener && look[i].tgid != r->tgid)) continue;
            if (r->tgid == 0 && !r->opener) r->tgid = look[i].tgid;
            if (!dying[i]) continue;
            r->killed = 1;
            m->killed++;
            post_event(m, EV_INTERRUPT, r->seq);
            break;
          }
        }
      }
    }
    if (watch) {
      struct timespec soon = now;
      soon.tv_nsec += INTERRUPT_POLL_MS * 1000000L;
      if (soon.tv_nsec >= 1000000000L) { soon.tv_sec++; soon.tv_nsec -= 1000000000L; }
      if (!have || ts_not_after(&soon, &next)) next = soon;
      have = 1;
    }
    m->reap_timed = have;
    if (have) {
      m->reap_at = next;
      pthread_cond_timedwait(&m->reap_cv, &m->reply_mu, &next);
    } else {
      pthread_cond_wait(&m->reap_cv, &m->reply_mu);
    }
  }
  pthread_mutex_unlock(&m->reply_mu);
  return NULL;
}

static void reap_stop (mount_t *m) {
  pthread_mutex_lock(&m->reply_mu);
  m->reap_stop = 1;
  pthread_cond_signal(&m->reap_cv);
  pthread_mutex_unlock(&m->reply_mu);
}

// A worker's end, under l->mu: its slot and counts go, the loop thread is told.
static void worker_end (worker_t *w) {
  loop_t *l = w->l;
  l->used[w->slot] = 0;
  l->idle--;
  l->workers--;
  pthread_cond_broadcast(&l->cv);
  free(w->buf.mem);
  free(w);
}

static void worker_cancelled (void *arg) {
  worker_t *w = arg;
  loop_t *l = w->l;
  pthread_mutex_lock(&l->mu);
  worker_end(w);
  pthread_mutex_unlock(&l->mu);
}

// One worker, as in libfuse's fuse_loop_mt: a new one starts when none is left waiting for a
// request (up to MAX_THREADS), one ends when more than IDLE_THREADS wait, and a worker can be
// cancelled only while it waits for a request.
static void *loop_worker (void *arg) {
  worker_t *w = arg;
  loop_t *l = w->l;
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
  for (;;) {
    if (fuse_session_exited(l->se)) break;
    int res;
    pthread_cleanup_push(worker_cancelled, w);
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
    res = fuse_session_receive_buf(l->se, &w->buf);
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
    pthread_cleanup_pop(0);
    if (res == -EINTR) continue;
    if (res <= 0) {
      if (res < 0) {
        pthread_mutex_lock(&l->mu);
        if (l->error == 0) l->error = res;
        pthread_mutex_unlock(&l->mu);
        fuse_session_exit(l->se);
      }
      break;
    }
    int forget = 0;
    libfuse_write_bits = 0;
    libfuse_write_owner = -1;
    if ((w->buf.flags & FUSE_BUF_IS_FD) == 0 && w->buf.size >= sizeof(struct fuse_in_header)) {
      uint32_t opcode = ((struct fuse_in_header *)w->buf.mem)->opcode;
      if (opcode == FUSE_READ && read_direct(l, &w->buf)) continue;
      if (opcode == FUSE_WRITE && write_direct(l, &w->buf)) continue;
      if (opcode == FUSE_WRITE && w->buf.size >= sizeof(struct fuse_in_header) + sizeof(struct fuse_write_in)) {
        const struct fuse_write_in *arg = (const struct fuse_write_in *)((struct fuse_in_header *)w->buf.mem + 1);
        libfuse_write_bits = write_bits(l->m, arg);
        libfuse_write_owner = write_owner(arg);
      }
      if (opcode == FUSE_INTERRUPT && direct_interrupt(l, &w->buf)) continue;
      // INIT comes before any other request, and the kernel sends none until it is answered
      if (opcode == FUSE_INIT && w->buf.size >= sizeof(struct fuse_in_header) + offsetof(struct fuse_init_in, flags2))
        __atomic_store_n(&l->m->piece_min, piece_pages(l->m, (const struct fuse_init_in *)((struct fuse_in_header *)w->buf.mem + 1)), __ATOMIC_RELAXED);
      forget = opcode == FUSE_FORGET || opcode == FUSE_BATCH_FORGET;
      rmdir_as_rename(l, &w->buf);
    }
    pthread_mutex_lock(&l->mu);
    if (!forget) l->idle--;
    if (l->idle == 0 && l->workers < MAX_THREADS && !fuse_session_exited(l->se)) loop_spawn(l);
    pthread_mutex_unlock(&l->mu);
    fuse_session_process_buf(l->se, &w->buf);
    pthread_mutex_lock(&l->mu);
    if (!forget) l->idle++;
    if (l->idle > IDLE_THREADS && l->workers > 1) {
      worker_end(w);
      pthread_mutex_unlock(&l->mu);
      return NULL;
    }
    pthread_mutex_unlock(&l->mu);
  }
  pthread_mutex_lock(&l->mu);
  worker_end(w);
  pthread_mutex_unlock(&l->mu);
  return NULL;
}

// Under l->mu. Workers take no signals: they inherit the loop thread's mask (all blocked).
static int loop_spawn (loop_t *l) {
  int slot = 0;
  while (slot < MAX_THREADS && l->used[slot]) slot++;
  if (slot == MAX_THREADS) return -1;
  worker_t *w = calloc(1, sizeof(worker_t));
  if (w == NULL) return -1;
  w->l = l;
  w->slot = slot;
  l->used[slot] = 1;
  l->workers++;
  l->idle++;
  if (pthread_create(&l->ids[slot], NULL, loop_worker, w) != 0) {
    l->used[slot] = 0;
    l->workers--;
    l->idle--;
    free(w);
    return -1;
  }
  pthread_detach(l->ids[slot]);
  return 0;
}

// Runs the session of `f` until it ends (unmount, connection aborted, error): 0 or -errno.
// Then the caller unmounts and calls session_drain(f, *out).
static int session_loop (struct fuse *f, mount_t *m, loop_t **out) {
  *out = NULL;
  loop_t *l = calloc(1, sizeof(loop_t));
  if (l == NULL) return -ENOMEM;
  l->se = fuse_get_session(f);
  l->m = m;
  pthread_mutex_init(&l->mu, NULL);
  pthread_cond_init(&l->cv, NULL);
  if (getrandom(&l->salt, sizeof l->salt, 0) != (ssize_t)sizeof l->salt) l->salt = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)l;
  *out = l;
  if (fuse_start_cleanup_thread(f) != 0) return -ENOMEM;
  pthread_mutex_lock(&l->mu);
  int rc = loop_spawn(l) == 0 ? 0 : -EAGAIN;
  while (rc == 0 && !fuse_session_exited(l->se) && l->workers > 0) pthread_cond_wait(&l->cv, &l->mu);
  if (rc == 0) rc = l->error;
  pthread_mutex_unlock(&l->mu);
  return rc;
}

// The session has ended: workers still waiting for a request are cancelled (those answering
// one finish it first), and the loop's state goes once the last has ended. Direct reads and
// writes still unanswered are waited for as a worker's request would be (JS answers each by its
// deadline, reap_thread by its deadline and grace, none later than the sync deadline and its
// grace): then the device is closed to them.
static void session_drain (struct fuse *f, mount_t *m, loop_t *l) {
  struct timespec deadline;
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  double wait = m->sync_timeout_ms + NATIVE_GRACE_MS;
  deadline.tv_sec += (time_t)(wait / 1000);
  deadline.tv_nsec += (long)((long long)wait % 1000) * 1000000L;
  if (deadline.tv_nsec >= 1000000000L) { deadline.tv_sec++; deadline.tv_nsec -= 1000000000L; }
  pthread_mutex_lock(&m->reply_mu);
  while (m->direct_inflight > 0) {
    if (pthread_cond_timedwait(&m->reply_cv, &m->reply_mu, &deadline) == ETIMEDOUT) break;
  }
  m->fd = -1;
  pthread_mutex_unlock(&m->reply_mu);
  if (l == NULL) return;
  pthread_mutex_lock(&l->mu);
  for (int i = 0; i < MAX_THREADS; i++) if (l->used[i]) pthread_cancel(l->ids[i]);
  while (l->workers > 0) pthread_cond_wait(&l->cv, &l->mu);
  pthread_mutex_unlock(&l->mu);
  pthread_mutex_destroy(&l->mu);
  pthread_cond_destroy(&l->cv);
  free(l);
  fuse_stop_cleanup_thread(f);
  fuse_session_reset(fuse_get_session(f));
}

static void *loop_thread (void *arg) {
  mount_t *m = arg;
  // the mount's own thread, before the session: no request waits on this read
  m->pages_limit = read_pages_limit();
  char *argv[3] = { "darkfs", "-o", NULL };
  char *argv_debug[4] = { "darkfs", "-d", "-o", NULL };
  const char *opts = "allow_other,default_permissions,fsname=darkfs,subtype=darkfs";
  argv[2] = (char *)opts;
  argv_debug[3] = (char *)opts;
  struct fuse_args args = m->debug ? (struct fuse_args)FUSE_ARGS_INIT(4, argv_debug) : (struct fuse_args)FUSE_ARGS_INIT(3, argv);
  struct fuse *f = fuse_new(&args, &ops, sizeof ops, m);
  if (f == NULL) {
    post_event(m, EV_MOUNTED, -EINVAL);
    post_event(m, EV_EXIT, 0);
    fuse_opt_free_args(&args);
    inval_stop(m);
    reap_stop(m);
    napi_release_threadsafe_function(m->tsfn, napi_tsfn_release);
    return NULL;
  }
  if (fuse_mount(f, m->dir) != 0) {
    fuse_destroy(f);
    post_event(m, EV_MOUNTED, -EIO);
    post_event(m, EV_EXIT, 0);
    fuse_opt_free_args(&args);
    inval_stop(m);
    reap_stop(m);
    napi_release_threadsafe_function(m->tsfn, napi_tsfn_release);
    return NULL;
  }
  pthread_rwlock_wrlock(&m->lock);
  m->fuse = f;
  pthread_rwlock_unlock(&m->lock);
  pthread_mutex_lock(&m->reply_mu);
  m->fd = fuse_session_fd(fuse_get_session(f));
  pthread_mutex_unlock(&m->reply_mu);
  post_event(m, EV_MOUNTED, 0);
  loop_t *l;
  int rc = session_loop(f, m, &l);
  pthread_rwlock_wrlock(&m->lock);
  m->fuse = NULL;
  pthread_rwlock_unlock(&m->lock);
  session_drain(f, m, l);
  opener_drop(m, -1);
  fuse_unmount(f);
  fuse_destroy(f);
  fuse_opt_free_args(&args);
  inval_stop(m);
  reap_stop(m);
  post_event(m, EV_EXIT, rc);
  napi_release_threadsafe_function(m->tsfn, napi_tsfn_release);
  return NULL;
}

static napi_value get_prop (napi_env env, napi_value obj, const char *name) {
  napi_value v;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok) return NULL;
  return v;
}

static double get_num (napi_env env, napi_value obj, const char *name, double dflt) {
  napi_value v = get_prop(env, obj, name);
  double d;
  if (v == NULL || napi_get_value_double(env, v, &d) != napi_ok) return dflt;
  return d;
}

static napi_value js_mount (napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) { napi_throw_type_error(env, NULL, "mount(dir, opts, handler)"); return NULL; }
  size_t len;
  NAPI(napi_get_value_string_utf8(env, argv[0], NULL, 0, &len));
  mount_t *m = calloc(1, sizeof(mount_t));
  if (m == NULL) { napi_throw_error(env, NULL, "out of memory"); return NULL; }
  m->dir = malloc(len + 1);
  napi_get_value_string_utf8(env, argv[0], m->dir, len + 1, &len);
  m->timeout_ms = get_num(env, argv[1], "timeoutMs", 30000);
  m->sync_timeout_ms = get_num(env, argv[1], "syncTimeoutMs", m->timeout_ms);
  m->attr_timeout = get_num(env, argv[1], "attrTimeout", 1);
  m->debug = get_num(env, argv[1], "debug", 0) != 0;
  double max_write = get_num(env, argv[1], "maxWrite", MAX_WRITE);
  m->max_write = max_write >= 4096 && max_write <= MAX_WRITE ? (uint32_t)max_write : MAX_WRITE;
  m->piece_min = PIECE_MIN_DEFAULT;
  pthread_rwlock_init(&m->lock, NULL);
  pthread_mutex_init(&m->inval_mu, NULL);
  pthread_mutex_init(&m->recent_mu, NULL);
  cond_init_monotonic(&m->inval_cv);
  m->fd = -1;
  double cap = get_num(env, argv[1], "directWrites", DIRECT_WRITES);
  m->direct_write_cap = cap >= 0 ? (long)cap : DIRECT_WRITES;
  pthread_mutex_init(&m->reply_mu, NULL);
  cond_init_monotonic(&m->reply_cv);
  cond_init_monotonic(&m->reap_cv);
  napi_value name;
  napi_create_string_utf8(env, "darkfs-fuse", NAPI_AUTO_LENGTH, &name);
  NAPI(napi_create_threadsafe_function(env, argv[2], NULL, name, 0, 1, NULL, NULL, NULL, call_js, &m->tsfn));
  // libfuse threads must not take the process's signals (the caller handles SIGINT/SIGTERM)
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  pthread_t t, ti, tr;
  int rc = pthread_create(&ti, NULL, inval_thread, m);
  if (rc == 0) {
    pthread_detach(ti);
    rc = pthread_create(&tr, NULL, reap_thread, m);
    if (rc == 0) {
      pthread_detach(tr);
      rc = pthread_create(&t, NULL, loop_thread, m);
      if (rc != 0) reap_stop(m);
    }
    if (rc != 0) inval_stop(m);
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) {
    napi_release_threadsafe_function(m->tsfn, napi_tsfn_abort);
    napi_throw_error(env, NULL, "cannot start the FUSE thread");
    return NULL;
  }
  pthread_detach(t);
  napi_value ext;
  // the mount_t is never freed: a few bytes per mount, and late invalidations stay safe
  NAPI(napi_create_external(env, m, NULL, NULL, &ext));
  return ext;
}

// The strings of the JS array `v` (copies, count in *count), or NULL when `v` is no array or an
// empty one.
static char **names_of (napi_env env, napi_value v, uint32_t *count) {
  bool is_array = false;
  *count = 0;
  if (napi_is_array(env, v, &is_array) != napi_ok || !is_array) return NULL;
  if (napi_get_array_length(env, v, count) != napi_ok || *count == 0) { *count = 0; return NULL; }
  char **names = calloc(*count, sizeof(char *));
  if (names == NULL) { *count = 0; return NULL; }
  for (uint32_t i = 0; i < *count; i++) {
    napi_value s;
    size_t sl = 0;
    napi_get_element(env, v, i, &s);
    napi_get_value_string_utf8(env, s, NULL, 0, &sl);
    names[i] = malloc(sl + 1);
    if (names[i] == NULL) { for (uint32_t k = 0; k < i; k++) free(names[k]); free(names); *count = 0; return NULL; }
    napi_get_value_string_utf8(env, s, names[i], sl + 1, &sl);
  }
  return names;
}

static napi_value js_reply (napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  req_t *r;
  NAPI(napi_get_value_external(env, argv[0], (void **)&r));
  int32_t result;
  NAPI(napi_get_value_int32(env, argv[1], &result));
  napi_valuetype ta = napi_undefined;
  void *adata = NULL;
  size_t alen = 0;
  if (argc > 2) napi_typeof(env, argv[2], &ta);
  bool is_ta = false;
  if (ta == napi_object) napi_is_typedarray(env, argv[2], &is_ta);
  if (is_ta) {
    napi_typedarray_type type;
    napi_value ab;
    size_t off;
    NAPI(napi_get_typedarray_info(env, argv[2], &type, &alen, &adata, &ab, &off));
    if (type == napi_float64_array) alen *= 8;
  }
  if (r->direct) {
    // the reply goes to the kernel from here (no worker to wake): a read's straight from JS's
    // buffer (no copy; writev has taken the bytes when it returns), a write's the count written
    // (dropped when an interrupt or the native deadline answered it first)
    int taken;
    uint32_t count_direct = 0;
    if (result < 0) {
      taken = direct_reply(r, result, NULL, 0);
    } else if (r->op == OP_WRITE) {
      struct fuse_write_out out = { .size = (uint32_t)((size_t)result < r->inlen ? (size_t)result : r->inlen), .padding = 0 };
      // other names of a hard-linked file to refresh first (JS names them only for such a file)
      char **names = argc > 2 && !r->js_released ? names_of(env, argv[2], &count_direct) : NULL;
      if (names != NULL) {
        r->js_released = 1; // JS's reference goes with the reply (inval_reply)
        taken = inval_reply(r, out, names, count_direct);
        napi_value ret;
        NAPI(napi_get_boolean(env, taken != 0, &ret));
        return ret;
      }
      taken = direct_reply(r, 0, &out, sizeof out);
    } else {
      taken = direct_reply(r, 0, adata, alen < r->outsize ? alen : r->outsize);
    }
    if (!r->js_released) { r->js_released = 1; direct_unref(r); }
    napi_value ret;
    NAPI(napi_get_boolean(env, taken != 0, &ret));
    return ret;
  }
  // attributes after a change (b, for any op but readdir)
  struct stat after;
  int has_after = 0;
  if (argc > 3 && result >= 0 && r->op != OP_READDIR) {
    bool b_ta = false;
    napi_valuetype tb = napi_undefined;
    napi_typeof(env, argv[3], &tb);
    if (tb == napi_object) napi_is_typedarray(env, argv[3], &b_ta);
    if (b_ta) {
      napi_typedarray_type type;
      napi_value ab;
      size_t off, blen;
      void *bdata;
      NAPI(napi_get_typedarray_info(env, argv[3], &type, &blen, &bdata, &ab, &off));
      if (type == napi_float64_array && blen >= STAT_FIELDS) { decode_stat(bdata, &after); has_after = 1; }
    }
  }
  // names (readdir entries, or paths to invalidate) and numbers: copied before taking the lock
  char **names = NULL;
  double *nums = NULL;
  uint32_t count = 0;
  bool is_array = false;
  if (argc > 2 && result >= 0) napi_is_array(env, argv[2], &is_array);
  if (is_array) {
    NAPI(napi_get_array_length(env, argv[2], &count));
    names = calloc(count > 0 ? count : 1, sizeof(char *));
    nums = calloc(count > 0 ? 2 * count : 1, sizeof(double));
    if (r->op == OP_READDIR && argc > 3) {
      napi_typedarray_type type;
      napi_value ab;
      size_t off, nlen;
      void *ndata;
      NAPI(napi_get_typedarray_info(env, argv[3], &type, &nlen, &ndata, &ab, &off));
      if (type == napi_float64_array && nlen >= 2 * (size_t)count) memcpy(nums, ndata, 2 * count * sizeof(double));
    }
    for (uint32_t i = 0; i < count; i++) {
      napi_value s;
      size_t sl;
      napi_get_element(env, argv[2], i, &s);
      napi_get_value_string_utf8(env, s, NULL, 0, &sl);
      names[i] = malloc(sl + 1);
      napi_get_value_string_utf8(env, s, names[i], sl + 1, &sl);
    }
  }
  pthread_mutex_lock(&r->mu);
  int taken = !r->done && !r->abandoned;
  if (taken) {
    if (result >= 0) {
      switch (r->op) {
        case OP_GETATTR:
          if (adata != NULL && alen >= STAT_FIELDS * 8) {
            decode_stat(adata, r->st);
          } else {
            result = -EIO;
          }
          break;
        case OP_STATFS:
          if (adata != NULL && alen >= STATFS_FIELDS * 8) {
            double *d = adata;
            memset(r->sv, 0, sizeof *r->sv);
            r->sv->f_bsize = r->sv->f_frsize = (unsigned long)d[0];
            r->sv->f_blocks = (fsblkcnt_t)d[1];
            r->sv->f_bfree = (fsblkcnt_t)d[2];
            r->sv->f_bavail = (fsblkcnt_t)d[3];
            r->sv->f_files = (fsfilcnt_t)d[4];
            r->sv->f_ffree = r->sv->f_favail = (fsfilcnt_t)d[5];
            r->sv->f_namemax = (unsigned long)d[6];
          } else {
            result = -EIO;
          }
          break;
        case OP_READ: {
          size_t n = alen < r->outsize ? alen : r->outsize;
          if (n > 0) memcpy(r->out, adata, n);
          result = (int)n;
          break;
        }
        case OP_READLINK: {
          if (r->outsize == 0) { result = -EINVAL; break; }
          size_t n = alen < r->outsize - 1 ? alen : r->outsize - 1;
          if (n > 0) memcpy(r->out, adata, n);
          r->out[n] = 0;
          result = 0;
          break;
        }
        case OP_GETXATTR:
        case OP_LISTXATTR:
          if (r->outsize == 0) {
            result = (int)alen;
          } else if (alen > r->outsize) {
            result = -ERANGE;
          } else {
            if (alen > 0) memcpy(r->out, adata, alen);
            result = (int)alen;
          }
          break;
        case OP_OPEN:
        case OP_CREATE:
        case OP_OPENDIR:
          if (has_after) { r->after = after; r->has_after = 1; }
          r->fi->fh = (uint64_t)result;
          r->fi->keep_cache = 0;
          // an O_APPEND handle that can write writes around the page cache (direct I/O).
          // Through the page cache the kernel (6.18 here) sent a write crossing a page boundary
          // as two WRITE requests, one per page (test/fuse/append-split.test.ts: 5 bytes at
          // 4,094 came as 2, then 3), and each is an append of its own at the Volume's end of
          // file: a commit between them (another handle's close) made one line two `append` ops,
          // between which another host's append could sort (torn36). Direct, a write(2) comes
          // as one request unless it is large or scattered: the kernel cuts a request at
          // max_write (MAX_WRITE) bytes and at max_pages (256) pages of the caller's memory (review36e: a
          // writev of 300 small iovecs came as 1,024 + 176 bytes; an unaligned write of
          // 3 MiB + 7 as 1,048,528 + ...). Those still split, as do the writes of a handle
          // made O_APPEND by fcntl F_SETFL after open (appends by write_bits, but through the
          // page cache). The kernel does not clear setuid/setgid on a direct write: it asks us
          // to (write_bits). An O_RDONLY|O_APPEND handle keeps the page cache, readahead and
          // shared mmap (which a direct_io handle refuses)
          if (r->op != OP_OPENDIR && (r->fi->flags & O_APPEND) != 0 && (r->fi->flags & O_ACCMODE) != O_RDONLY)
            r->fi->direct_io = 1;
          // other names of a file an O_TRUNC open cut, refreshed by op_open (finish_refresh)
          if (r->op == OP_OPEN) {
            r->names = names;
            r->count = count;
            names = NULL;
          }
          result = 0;
          break;
        case OP_READDIR:
          r->names = names;
          r->nums = nums;
          r->count = count;
          names = NULL;
          nums = NULL;
          result = 0;
          break;
        default:
          result = result > 0 && r->op != OP_WRITE ? 0 : result;
          if (has_after) { r->after = after; r->has_after = 1; }
          // paths whose cached attributes the worker refreshes (other names of a hard link)
          r->names = names;
          r->nums = nums;
          r->count = count;
          names = NULL;
          nums = NULL;
      }
    }
    r->result = result;
    r->done = 1;
    pthread_cond_signal(&r->cv);
  }
  int drop = !r->js_released;
  r->js_released = 1;
  int left = drop ? --r->refs : r->refs;
  pthread_mutex_unlock(&r->mu);
  if (names != NULL) {
    for (uint32_t i = 0; i < count; i++) free(names[i]);
    free(names);
  }
  free(nums);
  if (left == 0) req_free(r);
  napi_value ret;
  NAPI(napi_get_boolean(env, taken != 0, &ret));
  return ret;
}

typedef struct work_s {
  napi_async_work work;
  napi_ref cb;
  mount_t *m;
  char *path;
  int err;
} work_t;

static void exec_umount (napi_env env, void *data) {
  (void)env;
  work_t *w = data;
  w->err = umount2(w->path, MNT_DETACH) == 0 ? 0 : errno;
}

static void work_done (napi_env env, napi_status status, void *data) {
  (void)status;
  work_t *w = data;
  if (w->cb != NULL) {
    napi_value cb, undef, arg;
    napi_get_reference_value(env, w->cb, &cb);
    napi_get_undefined(env, &undef);
    napi_create_int32(env, w->err, &arg);
    napi_call_function(env, undef, cb, 1, &arg, NULL);
    napi_delete_reference(env, w->cb);
  }
  napi_delete_async_work(env, w->work);
  free(w->path);
  free(w);
}

static napi_value queue_work (napi_env env, napi_value path, napi_value cb, mount_t *m, napi_async_execute_callback exec) {
  work_t *w = calloc(1, sizeof(work_t));
  size_t len;
  NAPI(napi_get_value_string_utf8(env, path, NULL, 0, &len));
  w->path = malloc(len + 1);
  napi_get_value_string_utf8(env, path, w->path, len + 1, &len);
  w->m = m;
  napi_valuetype t = napi_undefined;
  if (cb != NULL) napi_typeof(env, cb, &t);
  if (t == napi_function) napi_create_reference(env, cb, 1, &w->cb);
  napi_value name;
  napi_create_string_utf8(env, "darkfs-fuse-work", NAPI_AUTO_LENGTH, &name);
  NAPI(napi_create_async_work(env, NULL, name, exec, work_done, w, &w->work));
  NAPI(napi_queue_async_work(env, w->work));
  return NULL;
}

static napi_value js_umount (napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  return queue_work(env, argv[0], argc > 1 ? argv[1] : NULL, NULL, exec_umount);
}

// The mount's counts of direct requests, for tests and metrics: of writes (write_direct) { writes,
// writesMax, writeBytes, handed, copied, overCap }, and of reads and writes { interrupted, expired,
// late } (see mount_t).
static napi_value js_stats (napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  mount_t *m;
  NAPI(napi_get_value_external(env, argv[0], (void **)&m));
  pthread_mutex_lock(&m->reply_mu);
  double v[14] = { (double)m->direct_writes, (double)m->direct_writes_max, (double)m->direct_write_bytes,
    (double)m->writes_handed, (double)m->writes_copied, (double)m->writes_over_cap,
    (double)m->direct_interrupted, (double)m->direct_expired, (double)m->direct_late, (double)m->killed, (double)m->worker_interrupted,
    (double)m->worker_expired, 0, 0 };
  pthread_mutex_unlock(&m->reply_mu);
  pthread_mutex_lock(&m->inval_mu);
  v[12] = (double)m->inval_retried;
  v[13] = (double)m->inval_recovered;
  pthread_mutex_unlock(&m->inval_mu);
  static const char *names[14] = { "writes", "writesMax", "writeBytes", "handed", "copied", "overCap", "interrupted", "expired", "late", "killed", "interruptedOthers", "expiredOthers",
    "invalRetried", "invalRecovered" };
  napi_value o;
  NAPI(napi_create_object(env, &o));
  for (int i = 0; i < 14; i++) {
    napi_value n;
    NAPI(napi_create_double(env, v[i], &n));
    NAPI(napi_set_named_property(env, o, names[i], n));
  }
  return o;
}

static napi_value js_invalidate (napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  mount_t *m;
  NAPI(napi_get_value_external(env, argv[0], (void **)&m));
  size_t len;
  NAPI(napi_get_value_string_utf8(env, argv[1], NULL, 0, &len));
  char *path = malloc(len + 1);
  if (path == NULL) { napi_throw_error(env, NULL, "out of memory"); return NULL; }
  napi_get_value_string_utf8(env, argv[1], path, len + 1, &len);
  inval_push(m, path);
  return NULL;
}

static napi_value init (napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "mount", NULL, js_mount, NULL, NULL, NULL, napi_default, NULL },
    { "reply", NULL, js_reply, NULL, NULL, NULL, napi_default, NULL },
    { "invalidate", NULL, js_invalidate, NULL, NULL, NULL, napi_default, NULL },
    { "stats", NULL, js_stats, NULL, NULL, NULL, napi_default, NULL },
    { "umount", NULL, js_umount, NULL, NULL, NULL, napi_default, NULL }
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
