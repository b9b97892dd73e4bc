/*
 * process.c - spawn, reap and stop stdio upstream children (see process.h).
 *
 * Live children are kept in one process-wide list - the one piece of
 * global state here, because SIGCHLD and waitpid(-1) are process-wide too
 * (the gateway has at most a few thousand children); SIGCHLD → mg_process_reap() → waitpid(-1, WNOHANG) loop. An
 * exec failure in the child is written to a close-on-exec pipe so the
 * parent reports "command not found" precisely instead of a vague crash.
 */
#include "upstream/process.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/log.h"

struct mg_process {
	struct mg_process *prev, *next;
	pid_t pid;
	struct event_base *base;
	mg_process_exit_fn on_exit;
	void *arg;
	struct event *stop_timer;
	int stop_stage; /* 0 running, 1 waiting after stdin close, 2 after SIGTERM */
	int grace_ms;
};

static struct mg_process *children;
static size_t n_children;

static const char *const inherited_env[] = { "PATH", "HOME", "LANG", "TZ", "LC_ALL", NULL };

static int set_nonblock_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -1;
	return fcntl(fd, F_SETFD, FD_CLOEXEC);
}

/* Builds the child's environment: a few inherited variables, then the
 * configured ones (which win). */
static char **build_env(const struct mg_kvv *env)
{
	size_t n = (env ? env->n : 0) + 8;
	char **v = calloc(n + 1, sizeof *v);
	if (!v)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; inherited_env[i]; i++) {
		const char *val = getenv(inherited_env[i]);
		bool overridden = false;
		for (size_t j = 0; env && j < env->n; j++)
			overridden |= strcmp(env->v[j].key, inherited_env[i]) == 0;
		if (!val || overridden)
			continue;
		size_t len = strlen(inherited_env[i]) + strlen(val) + 2;
		v[k] = malloc(len);
		if (v[k])
			snprintf(v[k++], len, "%s=%s", inherited_env[i], val);
	}
	for (size_t j = 0; env && j < env->n; j++) {
		size_t len = strlen(env->v[j].key) + strlen(env->v[j].value) + 2;
		v[k] = malloc(len);
		if (v[k])
			snprintf(v[k++], len, "%s=%s", env->v[j].key, env->v[j].value);
	}
	v[k] = NULL;
	return v;
}

static void free_strv(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* Finds `cmd` in the PATH of the child's environment (execvpe would use
 * the parent's PATH for the search; users expect the configured one). */
static char *resolve(const char *cmd, char **envp)
{
	if (strchr(cmd, '/'))
		return strdup(cmd);
	const char *path = NULL;
	for (size_t i = 0; envp[i]; i++) {
		if (strncmp(envp[i], "PATH=", 5) == 0)
			path = envp[i] + 5;
	}
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	char buf[4096];
	while (*path) {
		size_t len = strcspn(path, ":");
		if (len && len + strlen(cmd) + 2 < sizeof buf) {
			snprintf(buf, sizeof buf, "%.*s/%s", (int)len, path, cmd);
			if (access(buf, X_OK) == 0)
				return strdup(buf);
		}
		path += len;
		if (*path == ':')
			path++;
	}
	return NULL;
}

struct mg_process *mg_process_spawn(struct event_base *base, const struct mg_process_spec *spec,
                                    mg_process_exit_fn on_exit, void *arg, int *in_fd, int *out_fd,
                                    int *err_fd, char *err, size_t err_size)
{
	int pin[2] = { -1, -1 }, pout[2] = { -1, -1 }, perr[2] = { -1, -1 }, pexec[2] = { -1, -1 };
	struct mg_process *p = NULL;
	char **envp = build_env(spec->env);
	char *path = envp ? resolve(spec->command, envp) : NULL;
	size_t nargs = spec->args ? spec->args->n : 0;
	char **argv = calloc(nargs + 2, sizeof *argv);
	if (!envp || !argv) {
		snprintf(err, err_size, "out of memory");
		goto fail;
	}
	if (!path) {
		snprintf(err, err_size, "command \"%s\" not found in PATH", spec->command);
		goto fail;
	}
	argv[0] = (char *)spec->command;
	for (size_t i = 0; i < nargs; i++)
		argv[i + 1] = spec->args->v[i];
	if (pipe2(pin, O_CLOEXEC) < 0 || pipe2(pout, O_CLOEXEC) < 0 || pipe2(perr, O_CLOEXEC) < 0 ||
	    pipe2(pexec, O_CLOEXEC) < 0) {
		snprintf(err, err_size, "pipe: %s", strerror(errno));
		goto fail;
	}
	p = calloc(1, sizeof *p);
	if (!p) {
		snprintf(err, err_size, "out of memory");
		goto fail;
	}
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid_t pid = fork();
	if (pid == 0) {
		/* Child: only async-signal-safe calls from here to exec. */
		pid_t parent = getppid();
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(127);
		for (int s = 1; s < NSIG; s++)
			signal(s, SIG_DFL);
		sigset_t none;
		sigemptyset(&none);
		pthread_sigmask(SIG_SETMASK, &none, NULL);
		if (dup2(pin[0], 0) < 0 || dup2(pout[1], 1) < 0 || dup2(perr[1], 2) < 0)
			_exit(127);
		if (spec->cwd && chdir(spec->cwd) < 0) {
			int e = errno;
			ssize_t w = write(pexec[1], &e, sizeof e);
			(void)w;
			_exit(127);
		}
		execve(path, argv, envp);
		int e = errno;
		ssize_t w = write(pexec[1], &e, sizeof e);
		(void)w;
		_exit(127);
	}
	int fork_errno = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (pid < 0) {
		snprintf(err, err_size, "fork: %s", strerror(fork_errno));
		goto fail;
	}
	/* Also set the group from the parent: whichever runs first wins, and
	 * a stop can never target the wrong group. */
	setpgid(pid, pid);
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	close(pexec[1]);
	pin[0] = pout[1] = perr[1] = pexec[1] = -1;
	int child_errno = 0;
	ssize_t r;
	do
		r = read(pexec[0], &child_errno, sizeof child_errno);
	while (r < 0 && errno == EINTR);
	close(pexec[0]);
	pexec[0] = -1;
	if (r == (ssize_t)sizeof child_errno) {
		/* exec failed: the child exits at once; reap it here. */
		int st;
		waitpid(pid, &st, 0);
		if (spec->cwd && child_errno)
			snprintf(err, err_size, "cannot start \"%s\" (cwd \"%s\"): %s",
			         spec->command, spec->cwd, strerror(child_errno));
		else
			snprintf(err, err_size, "cannot execute \"%s\": %s", path,
			         strerror(child_errno));
		goto fail;
	}
	set_nonblock_cloexec(pin[1]);
	set_nonblock_cloexec(pout[0]);
	set_nonblock_cloexec(perr[0]);
	*in_fd = pin[1];
	*out_fd = pout[0];
	*err_fd = perr[0];
	p->pid = pid;
	p->on_exit = on_exit;
	p->arg = arg;
	p->base = base;
	p->stop_timer = NULL;
	p->next = children;
	if (children)
		children->prev = p;
	children = p;
	n_children++;
	free_strv(envp);
	free(path);
	free(argv);
	return p;
fail:
	for (int i = 0; i < 2; i++) {
		if (pin[i] >= 0)
			close(pin[i]);
		if (pout[i] >= 0)
			close(pout[i]);
		if (perr[i] >= 0)
			close(perr[i]);
		if (pexec[i] >= 0)
			close(pexec[i]);
	}
	free(p);
	free_strv(envp);
	free(path);
	free(argv);
	return NULL;
}

pid_t mg_process_pid(const struct mg_process *p)
{
	return p->pid;
}

static void on_stop_timer(evutil_socket_t fd, short what, void *arg)
{
	struct mg_process *p = arg;
	(void)fd;
	(void)what;
	if (p->stop_stage == 1) {
		kill(-p->pid, SIGTERM);
		p->stop_stage = 2;
		struct timeval tv = { .tv_sec = p->grace_ms / 1000,
			              .tv_usec = (p->grace_ms % 1000) * 1000 };
		evtimer_add(p->stop_timer, &tv);
	} else {
		mg_log_warn("upstream process %d ignored SIGTERM; killing its group", (int)p->pid);
		kill(-p->pid, SIGKILL);
	}
}

void mg_process_stop(struct mg_process *p, int grace_ms)
{
	if (p->stop_stage)
		return;
	p->stop_stage = 1;
	p->grace_ms = grace_ms;
	if (!p->stop_timer)
		p->stop_timer = evtimer_new(p->base, on_stop_timer, p);
	if (p->stop_timer) {
		struct timeval tv = { .tv_sec = grace_ms / 1000,
			              .tv_usec = (grace_ms % 1000) * 1000 };
		evtimer_add(p->stop_timer, &tv);
	} else {
		kill(-p->pid, SIGTERM);
	}
}

void mg_process_reap(void)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid <= 0)
			return;
		struct mg_process *p = children;
		while (p && p->pid != pid)
			p = p->next;
		if (!p)
			continue;
		if (p->prev)
			p->prev->next = p->next;
		else
			children = p->next;
		if (p->next)
			p->next->prev = p->prev;
		n_children--;
		/* Anything the child left in its group goes with it. */
		kill(-pid, SIGKILL);
		if (p->stop_timer)
			event_free(p->stop_timer);
		if (p->on_exit)
			p->on_exit(p, status, p->arg);
		free(p);
	}
}

size_t mg_process_count(void)
{
	return n_children;
}

void mg_process_kill_all(void)
{
	for (struct mg_process *p = children; p; p = p->next)
		kill(-p->pid, SIGKILL);
}

void mg_process_describe_status(int status, char *out, size_t size)
{
	if (WIFEXITED(status))
		snprintf(out, size, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(out, size, "killed by signal %d (%s)", WTERMSIG(status),
		         strsignal(WTERMSIG(status)));
	else
		snprintf(out, size, "ended (status %d)", status);
}
