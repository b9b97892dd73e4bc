/*
 * gcra.c - the generic cell rate algorithm on one theoretical arrival time.
 *
 * Pure integer arithmetic in microseconds, so a long run never drifts:
 *
 *   T   = round(1e6 / rate)            (>= 1, <= MG_GCRA_MAX_US)
 *   tau = (burst - 1) * T              (<= MG_GCRA_MAX_US)
 *   tat = stored TAT, or now for a fresh key (stored 0)
 *   allowed    iff now >= tat - tau;  then tat' = max(tat, now) + T
 *   remaining  = floor((now - (tat' - tau - T)) / T), in [0, burst - 1]
 *   reset      = tat' - now           (until the bucket is full again)
 *   refused:   remaining 0, retry_after = (tat - tau) - now, reset = tat - now,
 *              tat unchanged
 *
 * The Lua script in redis.c is the same algorithm on Redis' clock; change
 * both together. Every addition saturates, so no input overflows int64.
 */
#include "ratelimit/internal.h"

static int64_t sat_add(int64_t a, int64_t b)
{
	int64_t r;
	if (__builtin_add_overflow(a, b, &r))
		return b > 0 ? INT64_MAX : INT64_MIN;
	return r;
}

static int64_t sat_sub(int64_t a, int64_t b)
{
	int64_t r;
	if (__builtin_sub_overflow(a, b, &r))
		return b < 0 ? INT64_MAX : INT64_MIN;
	return r;
}

void mg_gcra_params(const struct mg_rate *r, struct mg_gcra_params *p)
{
	double ps = r->per_second;
	int64_t t = MG_GCRA_MAX_US;
	if (ps > 0) { /* false for NaN too */
		double x = 1e6 / ps;
		if (x < (double)MG_GCRA_MAX_US)
			t = (int64_t)(x + 0.5); /* x >= 0: llround, without the call */
		if (t < 1)
			t = 1;
	}
	int64_t burst = r->burst < 1 ? 1 : r->burst;
	int64_t tau;
	if (__builtin_mul_overflow(burst - 1, t, &tau) || tau > MG_GCRA_MAX_US)
		tau = MG_GCRA_MAX_US;
	p->t = t;
	p->tau = tau;
	p->burst = burst;
}

void mg_gcra(int64_t *tat_us, int64_t now_us, const struct mg_rate *r, struct mg_rl_decision *out)
{
	struct mg_gcra_params p;
	mg_gcra_params(r, &p);
	mg_gcra_with(tat_us, now_us, &p, out);
}

void mg_gcra_with(int64_t *tat_us, int64_t now_us, const struct mg_gcra_params *pp,
                  struct mg_rl_decision *out)
{
	const struct mg_gcra_params p = *pp;
	int64_t tat = *tat_us ? *tat_us : now_us;

	out->limit = p.burst;
	out->fallback = false;
	int64_t allow_at = sat_sub(tat, p.tau);
	if (now_us < allow_at) {
		out->allowed = false;
		out->remaining = 0;
		out->retry_after_us = sat_sub(allow_at, now_us);
		out->reset_us = sat_sub(tat, now_us);
		return;
	}
	int64_t next = sat_add(tat > now_us ? tat : now_us, p.t);
	/* next - now lies in [T, tau + T] unless saturated; clamp anyway. */
	int64_t ahead = sat_sub(next, now_us);
	int64_t room = sat_sub(p.tau + p.t, ahead);
	int64_t remaining = room > 0 ? room / p.t : 0;
	if (remaining > p.burst - 1)
		remaining = p.burst - 1;
	*tat_us = next ? next : 1; /* 0 means "fresh"; only reachable at now = -T */
	out->allowed = true;
	out->remaining = remaining;
	out->reset_us = ahead > 0 ? ahead : 0;
	out->retry_after_us = 0;
}
