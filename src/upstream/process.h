/*
 * process.h - child processes for stdio upstreams: spawn in a new process
 * group with pipes, reap on SIGCHLD, stop politely then firmly.
 *
 * A child gets a clean environment (PATH, HOME, LANG, TZ from the gateway
 * plus the configured `env`), its own process group (so grandchildren such
 * as `npx` → `node` are stopped together), and PR_SET_PDEATHSIG so it dies
 * if the gateway is killed outright. Stopping closes stdin, waits, sends
 * SIGTERM to the group, waits, then SIGKILL: no orphans, no zombies.
 */
#ifndef MG_UPSTREAM_PROCESS_H
#define MG_UPSTREAM_PROCESS_H

#include <event2/event.h>
#include <stdbool.h>
#include <sys/types.h>

#include "config/config.h"

struct mg_process;

/* Called once when the child has exited and was reaped. `status` is the
 * waitpid status. The process object is freed after the callback. */
typedef void (*mg_process_exit_fn)(struct mg_process *p, int status, void *arg);

struct mg_process_spec {
	const char *command;
	const struct mg_strv *args;
	const struct mg_kvv *env;
	const char *cwd;
};

/* Starts a child. On success returns the process with its pipe ends
 * (non-blocking, close-on-exec) in *in_fd (child's stdin, for writing),
 * *out_fd (stdout, for reading) and *err_fd (stderr, for reading); the
 * caller owns those fds. Returns NULL and a reason in `err` on failure
 * (e.g. the program does not exist: exec errors are reported through a
 * close-on-exec pipe, not guessed). */
struct mg_process *mg_process_spawn(struct event_base *base, const struct mg_process_spec *spec,
                                    mg_process_exit_fn on_exit, void *arg, int *in_fd, int *out_fd,
                                    int *err_fd, char *err, size_t err_size);

pid_t mg_process_pid(const struct mg_process *p);

/* Begins stopping: the caller has closed stdin (or does so now); after
 * `grace_ms` SIGTERM goes to the group, after another `grace_ms` SIGKILL.
 * The exit callback still fires when the child is reaped. */
void mg_process_stop(struct mg_process *p, int grace_ms);

/* Reaps every exited child (call from the SIGCHLD handler). */
void mg_process_reap(void);

/* Number of children not yet reaped. */
size_t mg_process_count(void);

/* Sends SIGKILL to every remaining child's group (last resort at exit). */
void mg_process_kill_all(void);

/* A short description of a wait status: "exited with status 1",
 * "killed by signal 9 (Killed)". */
void mg_process_describe_status(int status, char *out, size_t size);

#endif
