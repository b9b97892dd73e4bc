/*
 * seen.c - which successful authentications become auth_success records.
 *
 * Every request to the MCP endpoint authenticates; recording each success
 * made auth_success a third of the audit log's volume and cost (issue 12's
 * benchmark) while saying nothing new after the first: every tool_call,
 * tool_call_result and authz_denied record already names its identity and
 * provider, and every failure is still recorded. So a success is recorded
 * when its (identity, provider, client address) was not recorded within
 * `audit.auth_success_interval_secs` (0: every time) - for a legacy session
 * that is its initialize and then about once per interval, for stateless
 * (2026-07-28) requests the same per client.
 *
 * The memory is a fixed table of 64-bit hashes (of the three strings, a
 * word at a time) and times, one slot per hash: no allocation, bounded
 * size. A slot taken over by another triple forgets the older one, which
 * can only make its next success recorded sooner, never suppressed longer.
 */
#include <string.h>

#include "audit/audit.h"
#include "util/str.h"

void mg_audit_seen_init(struct mg_audit_seen *s, uint64_t interval_us)
{
	memset(s, 0, sizeof *s);
	s->interval_us = interval_us;
}

static uint64_t mix(uint64_t h, const char *s)
{
	return mg_hash_bytes(h, s, s ? strlen(s) : 0);
}

bool mg_audit_seen_due(struct mg_audit_seen *s, const char *identity, const char *provider,
                       const char *client, uint64_t now_us)
{
	if (s->interval_us == 0)
		return true;
	uint64_t h = mix(mix(mix(0xcbf29ce484222325ull, identity), provider), client);
	h |= 1; /* 0 marks an empty slot */
	size_t i = (size_t)(h >> 32) % MG_AUDIT_SEEN_SLOTS;
	if (s->slot[i].hash == h && now_us >= s->slot[i].at_us &&
	    now_us - s->slot[i].at_us < s->interval_us)
		return false;
	s->slot[i].hash = h;
	s->slot[i].at_us = now_us;
	return true;
}
