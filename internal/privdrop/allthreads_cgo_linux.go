//go:build cgo

package privdrop

// With cgo, syscall.AllThreadsSyscall refuses (ENOTSUP): the runtime cannot
// know threads that C code started. quictun's C code (the resolver in libc)
// starts none, so every thread is in /proc/self/task. qt_all_threads
// installs a handler for one real-time signal, sends it to each thread
// there (tgkill), and waits until each has made the call in the handler or
// has ended; then it lists the threads again, so that one started in the
// meantime, possibly from a thread not yet changed, is not missed, until a
// listing finds no new thread. A new thread inherits the credentials of the
// thread that started it, so once every listed thread has made the call,
// so will every later one. It gives up after a timeout (a thread that never
// runs the handler), and Drop's check of /proc/self/task catches anything
// this missed.
//
// The signal is SIGSYS, as libcap's psx uses: the Go runtime never blocks
// it, not even on the thread that os/signal keeps with every other signal
// blocked (a real-time signal never reaches that one). Go's own handler
// would crash the process on it, so the handler is put back only once
// every signalled thread has run ours or has ended, and after a timeout
// ours stays. Ours ignores a SIGSYS it did not send (seccomp's). It is
// installed with SA_ONSTACK (Go runs signal handlers on each thread's
// signal stack; a goroutine stack is too small) and SA_RESTART.

/*
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum { QT_PRCTL = 1, QT_CAPSET = 2 };
#define QT_MAX_THREADS 4096

static struct {
	int op;
	unsigned long long a1, a2, a3;
	pid_t pid;
	atomic_int err;
	atomic_int ndone;
	atomic_int done[QT_MAX_THREADS];
} qt_req;

static int qt_signaled[QT_MAX_THREADS];

static long qt_do(void) {
	if (qt_req.op == QT_PRCTL) {
		return syscall(SYS_prctl, (unsigned long)qt_req.a1, (unsigned long)qt_req.a2,
			(unsigned long)qt_req.a3, 0UL, 0UL);
	}
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	d[0].effective = (__u32)qt_req.a1;
	d[1].effective = (__u32)(qt_req.a1 >> 32);
	d[0].permitted = (__u32)qt_req.a2;
	d[1].permitted = (__u32)(qt_req.a2 >> 32);
	d[0].inheritable = (__u32)qt_req.a3;
	d[1].inheritable = (__u32)(qt_req.a3 >> 32);
	return syscall(SYS_capset, &h, d);
}

static void qt_handler(int sig, siginfo_t *info, void *uctx) {
	(void)sig;
	(void)uctx;
	if (info->si_code != SI_TKILL || info->si_pid != qt_req.pid) {
		return;
	}
	int saved = errno;
	if (qt_do() == -1) {
		int zero = 0;
		atomic_compare_exchange_strong(&qt_req.err, &zero, errno);
	}
	int i = atomic_fetch_add(&qt_req.ndone, 1);
	if (i < QT_MAX_THREADS) {
		atomic_store(&qt_req.done[i], (int)syscall(SYS_gettid));
	}
	errno = saved;
}

static int qt_is_done(int tid) {
	int n = atomic_load(&qt_req.ndone);
	if (n > QT_MAX_THREADS) {
		n = QT_MAX_THREADS;
	}
	for (int i = 0; i < n; i++) {
		if (atomic_load(&qt_req.done[i]) == tid) {
			return 1;
		}
	}
	return 0;
}

static int qt_task_exists(int tid) {
	char path[64];
	snprintf(path, sizeof path, "/proc/self/task/%d", tid);
	return access(path, F_OK) == 0;
}

static long long qt_ms_since(const struct timespec *start) {
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)(now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000;
}

// qt_all_threads runs op on every thread; it returns 0 or an errno.
static int qt_all_threads(int op, unsigned long long a1, unsigned long long a2,
		unsigned long long a3, int timeout_ms) {
	int sig = SIGSYS;
	memset(&qt_req, 0, sizeof qt_req);
	qt_req.op = op;
	qt_req.a1 = a1;
	qt_req.a2 = a2;
	qt_req.a3 = a3;
	qt_req.pid = getpid();
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = qt_handler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
	sigfillset(&sa.sa_mask);
	if (sigaction(sig, &sa, &old) != 0) {
		return errno;
	}
	struct timespec start;
	clock_gettime(CLOCK_MONOTONIC, &start);
	int nsig = 0, result = 0;
	for (;;) {
		int fresh = 0;
		DIR *dir = opendir("/proc/self/task");
		if (dir == NULL) {
			result = errno;
			break;
		}
		struct dirent *e;
		while (result == 0 && (e = readdir(dir)) != NULL) {
			if (e->d_name[0] < '0' || e->d_name[0] > '9') {
				continue;
			}
			int tid = atoi(e->d_name), seen = 0;
			for (int i = 0; i < nsig && !seen; i++) {
				seen = qt_signaled[i] == tid;
			}
			if (seen) {
				continue;
			}
			if (nsig == QT_MAX_THREADS) {
				result = E2BIG;
				break;
			}
			if (syscall(SYS_tgkill, qt_req.pid, tid, sig) != 0) {
				if (errno != ESRCH) {
					result = errno;
				}
				continue;
			}
			qt_signaled[nsig++] = tid;
			fresh = 1;
		}
		closedir(dir);
		if (result != 0) {
			break;
		}
		for (;;) {
			int pending = 0;
			for (int i = 0; i < nsig && !pending; i++) {
				pending = !qt_is_done(qt_signaled[i]) && qt_task_exists(qt_signaled[i]);
			}
			if (!pending) {
				break;
			}
			if (qt_ms_since(&start) > timeout_ms) {
				return ETIMEDOUT; // the handler stays: a late signal must not reach Go's
			}
			struct timespec pause = {0, 200000};
			nanosleep(&pause, NULL);
		}
		if (!fresh) {
			break;
		}
	}
	sigaction(sig, &old, NULL);
	if (result == 0) {
		result = atomic_load(&qt_req.err);
	}
	return result;
}
*/
import "C"

import (
	"fmt"
	"sync"
	"syscall"
)

// allThreadsTimeout bounds one call on every thread (milliseconds). A
// thread takes the signal as soon as it has it unblocked, which the Go
// runtime does all but a few instructions of the time.
const allThreadsTimeout = 5000

// allThreadsMu serializes the calls: qt_all_threads has one request slot.
var allThreadsMu sync.Mutex

func allThreads(op C.int, a1, a2, a3 uint64) error {
	allThreadsMu.Lock()
	defer allThreadsMu.Unlock()
	e := syscall.Errno(C.qt_all_threads(op, C.ulonglong(a1), C.ulonglong(a2), C.ulonglong(a3), allThreadsTimeout))
	switch e {
	case 0:
		return nil
	case syscall.ETIMEDOUT:
		return fmt.Errorf("a thread did not run the call within %d ms (SIGSYS blocked?)", allThreadsTimeout)
	}
	return e
}

// allThreadsPrctl runs prctl(option, arg2, arg3, 0, 0) on every thread.
func allThreadsPrctl(option, arg2, arg3 uintptr) error {
	return allThreads(C.QT_PRCTL, uint64(option), uint64(arg2), uint64(arg3))
}

// allThreadsCapset sets the effective, permitted and inheritable sets of
// every thread.
func allThreadsCapset(effective, permitted, inheritable uint64) error {
	return allThreads(C.QT_CAPSET, effective, permitted, inheritable)
}
