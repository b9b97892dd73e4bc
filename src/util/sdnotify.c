/*
 * sdnotify.c - sd_notify(3) in a few lines: one AF_UNIX datagram to the
 * path in $NOTIFY_SOCKET ("@name" is a Linux abstract socket). The gateway
 * sends READY=1 once it listens, RELOADING=1 / READY=1 around a SIGHUP
 * reload and STOPPING=1 when a graceful shutdown begins, so the systemd
 * unit can use Type=notify (deploy/systemd/mcp-guard.service).
 */
#include "util/sdnotify.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int mg_sd_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	int rc = -1, fd = -1;
	if (!path || !path[0])
		return 0;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof sa.sun_path)
		goto out;
	memcpy(sa.sun_path, path, len);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto out;
	socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	ssize_t n = sendto(fd, state, strlen(state), MSG_DONTWAIT | MSG_NOSIGNAL,
	                   (struct sockaddr *)&sa, salen);
	rc = n == (ssize_t)strlen(state) ? 1 : -1;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}
