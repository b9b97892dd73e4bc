/*
 * test_ssrf.c - the SSRF rule of http/client.c: which addresses the gateway
 * may connect to, with and without allow_private_networks. Pure: no
 * network, no libcurl.
 */
#include "support.h"

#include <arpa/inet.h>
#include <string.h>

#include "http/client.h"

static enum mg_addr_class classify(const char *text)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	if (strchr(text, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, text, &a->sin6_addr), 1);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, text, &a->sin_addr), 1);
	}
	return mg_fetch_classify((struct sockaddr *)&ss);
}

static void test_public(void **state)
{
	(void)state;
	static const char *const pub[] = { "8.8.8.8",         "1.1.1.1",
		                           "172.32.0.1",      "100.128.0.1",
		                           "192.0.2.1",       "2606:4700::1111",
		                           "::ffff:8.8.8.8",  "64:ff9b::808:808",
		                           "2002:808:808::1", NULL };
	for (size_t i = 0; pub[i]; i++) {
		if (classify(pub[i]) != MG_ADDR_PUBLIC)
			fail_msg("%s should be public", pub[i]);
	}
}

static void test_private(void **state)
{
	(void)state;
	/* Reachable only with allow_private_networks. */
	static const char *const priv[] = { "127.0.0.1",       "127.255.0.9",    "10.1.2.3",
		                            "172.16.0.1",      "172.31.255.255", "192.168.1.1",
		                            "100.64.0.1",      "198.18.0.1",     "::1",
		                            "fc00::1",         "fd12:3456::1",   "::ffff:127.0.0.1",
		                            "::ffff:10.0.0.1", "64:ff9b::a00:1", NULL };
	for (size_t i = 0; priv[i]; i++) {
		if (classify(priv[i]) != MG_ADDR_PRIVATE)
			fail_msg("%s should be private", priv[i]);
	}
}

static void test_forbidden(void **state)
{
	(void)state;
	/* Never, whatever the configuration: metadata services and what no
	 * server lives at. */
	static const char *const bad[] = { "169.254.169.254",
		                           "169.254.0.1",
		                           "0.0.0.0",
		                           "0.1.2.3",
		                           "224.0.0.1",
		                           "255.255.255.255",
		                           "240.0.0.1",
		                           "192.0.0.192",
		                           "fe80::1",
		                           "fd00:ec2::254",
		                           "::",
		                           "ff02::1",
		                           "fec0::1",
		                           "::ffff:169.254.169.254",
		                           "64:ff9b::a9fe:a9fe",
		                           "2002:a9fe:a9fe::1",
		                           "2002:7f00:1::1",
		                           "100::1",
		                           NULL };
	for (size_t i = 0; bad[i]; i++) {
		if (classify(bad[i]) != MG_ADDR_FORBIDDEN)
			fail_msg("%s should be forbidden", bad[i]);
	}
}

static void test_allowed(void **state)
{
	(void)state;
	struct sockaddr_in a = { .sin_family = AF_INET };
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	assert_false(mg_fetch_address_allowed((struct sockaddr *)&a, false));
	assert_true(mg_fetch_address_allowed((struct sockaddr *)&a, true));
	inet_pton(AF_INET, "169.254.169.254", &a.sin_addr);
	assert_false(mg_fetch_address_allowed((struct sockaddr *)&a, true));
	inet_pton(AF_INET, "93.184.216.34", &a.sin_addr);
	assert_true(mg_fetch_address_allowed((struct sockaddr *)&a, false));
	struct sockaddr un = { .sa_family = AF_UNIX };
	assert_false(mg_fetch_address_allowed(&un, true));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_public),
		cmocka_unit_test(test_private),
		cmocka_unit_test(test_forbidden),
		cmocka_unit_test(test_allowed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
