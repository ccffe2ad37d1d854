/* libscaleneprof: the CPU sampler's signal handler.
 *
 * EVERYTHING IN THIS FILE RUNS INSIDE A SIGNAL HANDLER (or must be safe to):
 * it is async-signal-safe, allocation-free and lock-free.  It may call only:
 *   - system calls: clock_gettime, getrusage(RUSAGE_THREAD), syscall(SYS_gettid),
 *     process_vm_readv and, before the sampler first started, getpid
 *     (through scalene__safe_read_partial);
 *   - memset/memcpy (async-signal-safe since POSIX.1-2016);
 *   - lock-free C11 atomics on objects allocated before the timers were armed;
 *   - scalene__codemap_lookup (a binary search over an immutable array,
 *     found through an atomic pointer that the sampler's thread replaces,
 *     never frees, while sampling);
 *   - the consumer's locator, which sampler.h requires to be async-signal-safe;
 *     with stacks it writes into the record's stack buffer, allocated with
 *     the ring when the thread was armed.
 * It never calls malloc, stdio, pthread locks, or anything of stats.h.  errno
 * is saved and restored.  The handler is not re-entrant for one signal (the
 * kernel blocks the signal while its handler runs: no SA_NODEFER). */
#include "sampler_internal.h"

#include <errno.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <ucontext.h>
#include <unistd.h>

pid_t scalene__gettid(void) { return (pid_t)syscall(SYS_gettid); }

clockid_t scalene__thread_cpuclock(pid_t tid) {
  /* MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED): bits 0-1 the clock (2 =
   * SCHED), bit 2 "per thread", the rest the inverted id. */
  return (clockid_t)(((~(uint32_t)tid) << 3) | 6u); /* computed unsigned: no UB */
}

_Atomic pid_t scalene__self_pid;

long scalene__safe_read_partial(void *dst, const void *addr, size_t n) {
  struct iovec local = {dst, n};
  struct iovec remote = {(void *)(uintptr_t)addr, n};
  int saved = errno;
  pid_t pid = atomic_load_explicit(&scalene__self_pid, memory_order_relaxed);
  if (pid == 0) pid = getpid();
  ssize_t r = process_vm_readv(pid, &local, 1, &remote, 1, 0);
  errno = saved;
  return r < 0 ? -1 : (long)r;
}

int scalene_safe_read(void *dst, const void *addr, size_t n) {
  if (n == 0) return 0;
  if (dst == NULL) return -1;
  long r = scalene__safe_read_partial(dst, addr, n);
  return r == (long)n ? 0 : -1;
}

static uint64_t tv_us(const struct timeval *tv) {
  return (uint64_t)tv->tv_sec * 1000000u + (uint64_t)tv->tv_usec;
}

/* Registers of the interrupted context. */
static void context_regs(const void *ucv, uintptr_t *pc, uintptr_t *sp, uintptr_t *fp) {
  *pc = *sp = *fp = 0;
  if (ucv == NULL) return;
#if defined(__x86_64__)
  const ucontext_t *uc = ucv;
  *pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
  *sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
  *fp = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP];
#elif defined(__aarch64__)
  const ucontext_t *uc = ucv;
  *pc = (uintptr_t)uc->uc_mcontext.pc;
  *sp = (uintptr_t)uc->uc_mcontext.sp;
  *fp = (uintptr_t)uc->uc_mcontext.regs[29];
#elif defined(__i386__)
  const ucontext_t *uc = ucv;
  *pc = (uintptr_t)uc->uc_mcontext.gregs[REG_EIP];
  *sp = (uintptr_t)uc->uc_mcontext.gregs[REG_ESP];
  *fp = (uintptr_t)uc->uc_mcontext.gregs[REG_EBP];
#else
  /* Unknown architecture: pc 0, which classifies as native. */
  (void)ucv;
#endif
}

/* How many bytes above the stack pointer are searched for the caller of
 * libc/libm/ld.so/vDSO code.  A leaf routine there keeps its return address
 * at [sp]; routines with a frame push a few registers first. */
#define CALLER_SCAN_BYTES 512

/* Python or native for user-mode time at pc.
 *
 * Inside the interpreter it is Python; inside other known code, or code
 * loaded after start, it is native.  Inside the system libraries it is the
 * caller's kind: the interpreter calls memcpy, hypot, malloc just as
 * extensions do, and a plain test of the pc misfiles about a third of a
 * numeric Python loop as native.  The caller is the first word above sp that
 * is a return address into the interpreter or into other known code.  A word
 * counts as a return address only when the bytes before it are a call
 * instruction (x86_64: call rel32, or call through a register or memory
 * operand): saved registers and stale slots often hold pointers into the
 * interpreter's text (function pointers, handlers), and taking those for
 * callers filed native time as Python. */
#if defined(__x86_64__)
static int after_call(uintptr_t ret) {
  unsigned char b[8];
  if (ret < sizeof b || scalene__safe_read_partial(b, (const void *)(ret - sizeof b), sizeof b) !=
                            (long)sizeof b)
    return 0;
  /* b[7] is the byte just before ret. */
  if (b[3] == 0xE8) return 1; /* call rel32 */
  /* call r/m64 is FF /2: ModRM reg field 2; with an optional REX (0x40-0x4F)
   * and SIB/displacement making it 2 to 7 bytes long. */
  for (int len = 2; len <= 7; len++) {
    int op = 8 - len;
    int at = op;
    if (b[at] >= 0x40 && b[at] <= 0x4F && len >= 3) at++; /* REX */
    if (b[at] != 0xFF) continue;
    unsigned char modrm = b[at + 1];
    if (((modrm >> 3) & 7) != 2) continue;
    int mod = modrm >> 6, rm = modrm & 7;
    int need = 2 + (at - op); /* opcode, ModRM, REX */
    if (mod != 3 && rm == 4) need++; /* SIB */
    if (mod == 1) need += 1;
    else if (mod == 2 || (mod == 0 && rm == 5)) need += 4;
    if (need == len) return 1;
  }
  return 0;
}
#else
static int after_call(uintptr_t ret) {
  (void)ret;
  return 1;
}
#endif

static int classify(const scalene_sampler_t *s, uintptr_t pc, uintptr_t sp) {
  if (s->opts.interpreter_addr == NULL) return SCALENE_CPU_NATIVE;
  const scalene__codemap_t *m = atomic_load_explicit(&s->map, memory_order_acquire);
  if (m == NULL) return SCALENE_CPU_NATIVE;
  int tag = scalene__codemap_lookup(m, pc);
  if (tag == SCALENE__CODE_INTERPRETER) return SCALENE_CPU_PYTHON;
  if (tag != SCALENE__CODE_SYSTEM || sp == 0) return SCALENE_CPU_NATIVE;
  uintptr_t words[CALLER_SCAN_BYTES / sizeof(uintptr_t)];
  long got = scalene__safe_read_partial(words, (const void *)sp, sizeof words);
  if (got <= 0) return SCALENE_CPU_NATIVE;
  size_t nw = (size_t)got / sizeof(uintptr_t);
  for (size_t i = 0; i < nw; i++) {
    int t = scalene__codemap_lookup(m, words[i]);
    if (t != SCALENE__CODE_INTERPRETER && t != SCALENE__CODE_OTHER) continue;
    if (!after_call(words[i])) continue;
    return t == SCALENE__CODE_INTERPRETER ? SCALENE_CPU_PYTHON : SCALENE_CPU_NATIVE;
  }
  return SCALENE_CPU_NATIVE;
}

/* The handler.  Its sample weighs exactly the CPU time the thread used since
 * its previous sample (so the weights of a thread add up to its CPU time
 * while it was armed, whatever the kernel's timer granularity or overruns);
 * the system share of that weight is the thread's Δstime/(Δutime+Δstime)
 * over the same span, from its own rusage. */
void scalene__sampler_handler(int signum, siginfo_t *si, void *ucv) {
  int saved_errno = errno;
  (void)signum;
  if (si == NULL || si->si_code != SI_TIMER) goto out;
  scalene__slot_t *slot = si->si_value.sival_ptr;
  if (slot == NULL) goto out;
  scalene_sampler_t *s = slot->s; /* slots live as long as their sampler */
  /* Count ourselves in before looking at `active`, so that stop, which
   * clears `active` and then waits for in_handler to reach 0, never frees
   * or reuses what a running handler still reads. */
  atomic_fetch_add_explicit(&s->in_handler, 1, memory_order_seq_cst);
  if (!atomic_load_explicit(&slot->active, memory_order_seq_cst)) goto done;
  if (slot->tid != scalene__gettid()) goto done; /* a stray signal (e.g. after fork) */

  struct timespec ts;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) goto done;
  uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
  uint64_t weight_ns = now > slot->last_cpu_ns ? now - slot->last_cpu_ns : 0;
  slot->last_cpu_ns = now;

  double sys_frac = 0.0;
  struct rusage ru;
  if (getrusage(RUSAGE_THREAD, &ru) == 0) {
    uint64_t u = tv_us(&ru.ru_utime), st = tv_us(&ru.ru_stime);
    uint64_t du = u, ds = st; /* first sample: the thread's ratio so far */
    if (slot->primed) {
      du = u >= slot->last_utime_us ? u - slot->last_utime_us : 0;
      ds = st >= slot->last_stime_us ? st - slot->last_stime_us : 0;
    }
    slot->last_utime_us = u;
    slot->last_stime_us = st;
    slot->primed = 1;
    if (du + ds > 0) sys_frac = (double)ds / (double)(du + ds);
  }

  scalene_sample_context_t ctx;
  memset(&ctx, 0, sizeof ctx);
  ctx.tid = slot->tid;
  ctx.remote = 0;
  ctx.ucontext = ucv;
  context_regs(ucv, &ctx.pc, &ctx.sp, &ctx.fp);

  /* The record the sample will take, when there is room: with stacks, the
   * locator writes straight into that record's stack buffer, which no one
   * else touches until head moves past it (single producer; the consumer
   * reads only below head, and tail only grows, so the room stays). */
  uint32_t h = atomic_load_explicit(&slot->head, memory_order_relaxed);
  uint32_t t = atomic_load_explicit(&slot->tail, memory_order_acquire);
  if (slot->stk != NULL && h - t <= slot->mask) {
    ctx.stack = slot->stk + (size_t)(h & slot->mask) * s->opts.stack_bytes;
    ctx.stack_cap = s->opts.stack_bytes;
    ctx.stack[0] = '\0';
  }

  scalene_location_t loc;
  memset(&loc, 0, sizeof loc);
  int r = s->opts.locator(&ctx, &loc, s->opts.locator_arg);
  if (r == SCALENE_LOCATE_SKIP || (r != SCALENE_LOCATE_FOUND && r != SCALENE_LOCATE_UNATTRIBUTED)) {
    atomic_fetch_add_explicit(&s->skipped, 1, memory_order_relaxed);
    goto done;
  }

  if (h - t > slot->mask) {
    atomic_fetch_add_explicit(&s->dropped, 1, memory_order_relaxed);
    goto done;
  }
  scalene__record_t *rec = &slot->rec[h & slot->mask];
  double w = (double)weight_ns * 1e-9;
  int kind = classify(s, ctx.pc, ctx.sp);
  rec->seconds[SCALENE_CPU_PYTHON] = 0.0;
  rec->seconds[SCALENE_CPU_NATIVE] = 0.0;
  rec->seconds[SCALENE_CPU_SYSTEM] = w * sys_frac;
  rec->seconds[kind] += w * (1.0 - sys_frac);
  rec->flags = r == SCALENE_LOCATE_UNATTRIBUTED ? SCALENE__REC_UNATTRIBUTED : 0u;
  if (r == SCALENE_LOCATE_FOUND) {
    loc.file[SCALENE_LOCATION_FILE_MAX - 1] = '\0';
    loc.function[SCALENE_LOCATION_FUNCTION_MAX - 1] = '\0';
    memcpy(&rec->loc, &loc, sizeof loc);
  }
  if (ctx.stack != NULL) ctx.stack[ctx.stack_cap - 1] = '\0'; /* whatever the locator wrote */
  atomic_store_explicit(&slot->head, h + 1, memory_order_release);
  atomic_fetch_add_explicit(&s->samples, 1, memory_order_relaxed);

done:
  atomic_fetch_sub_explicit(&s->in_handler, 1, memory_order_acq_rel);
out:
  errno = saved_errno;
}
