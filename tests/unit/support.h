/*
 * support.h - cmocka includes in the order cmocka needs, plus helpers.
 */
#ifndef MG_TEST_SUPPORT_H
#define MG_TEST_SUPPORT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#endif
