// A browser, as far as OAuth logins need one: cookies per origin and
// redirects followed by hand (fetch with redirect: 'manual'), stopping at a
// URL prefix (a client's redirect URI, which nothing needs to serve).
// Used by the OAuth tests (oauth-login, oauth-facade).

/** Cookies per origin, as a browser keeps them (names only; enough for oidc-provider). */
export class Jar {
    constructor() {
        this.byOrigin = new Map();
    }

    header(url) {
        const m = this.byOrigin.get(new URL(url).origin);
        return m && m.size ? [...m].map(([k, v]) => `${k}=${v}`).join('; ') : undefined;
    }

    store(url, response) {
        const origin = new URL(url).origin;
        if (!this.byOrigin.has(origin)) this.byOrigin.set(origin, new Map());
        const m = this.byOrigin.get(origin);
        for (const c of response.headers.getSetCookie()) {
            const [pair, ...attrs] = c.split(';');
            const eq = pair.indexOf('=');
            const name = pair.slice(0, eq).trim();
            const value = pair.slice(eq + 1).trim();
            const expired = attrs.some(a => /^\s*expires=.*1970/i.test(a)) || attrs.some(a => /^\s*max-age=0/i.test(a));
            if (expired || value === '') m.delete(name);
            else m.set(name, value);
        }
    }
}

/**
 * Follows redirects from `url` like a browser until a URL starting with
 * `stopAt` (returned, not requested), at most 20 hops.
 */
export async function browse(url, stopAt, jar = new Jar()) {
    for (let hop = 0; hop < 20; hop++) {
        if (url.startsWith(stopAt)) return url;
        const cookie = jar.header(url);
        const r = await fetch(url, { redirect: 'manual', headers: cookie ? { cookie } : {}, signal: AbortSignal.timeout(10000) });
        jar.store(url, r);
        const loc = r.headers.get('location');
        if (r.status < 300 || r.status > 399 || !loc) throw new Error(`${url} answered ${r.status} without a redirect: ${(await r.text()).slice(0, 500)}`);
        url = new URL(loc, url).href;
    }
    throw new Error('more than 20 redirects');
}
