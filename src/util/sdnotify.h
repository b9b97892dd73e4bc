/*
 * sdnotify.h - systemd readiness notification (sd_notify(3)) without libsystemd.
 *
 * With Type=notify, systemd passes the path of a datagram socket in
 * $NOTIFY_SOCKET; the service writes "READY=1", "RELOADING=1",
 * "STOPPING=1" to it. Without the variable (not under systemd) every call is
 * a no-op. Sending never blocks (MSG_DONTWAIT), so it is safe on the loop.
 */
#ifndef MG_UTIL_SDNOTIFY_H
#define MG_UTIL_SDNOTIFY_H

/* Sends `state` (e.g. "READY=1\nSTATUS=listening") to $NOTIFY_SOCKET.
 * Returns 1 when sent, 0 when $NOTIFY_SOCKET is unset, -1 on an error
 * (bad path, socket unreachable); errors are not fatal to the caller. */
int mg_sd_notify(const char *state);

#endif
