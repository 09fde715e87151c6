/* getaddrinfo inside a coroutine: a numeric address is answered on the
 * spot, a name goes to the offload pool (its helper threads appear, the
 * coroutine parks), and the answers and error codes are libc's. */
#include "hook_test.h"

#include <dirent.h>
#include <netdb.h>

static int tasks(void)
{
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

#define POOL 2 /* SPINDLE_OFFLOAD_THREADS, set in main */

static void *numeric(void *unused)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res;
    assert_int_equal(getaddrinfo("127.0.0.1", "8080", &hints, &res), 0);
    struct sockaddr_in *a = (struct sockaddr_in *)res->ai_addr;
    assert_int_equal(a->sin_port, htons(8080));
    assert_int_equal(a->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
    freeaddrinfo(res);
    hints.ai_flags = AI_NUMERICHOST;
    assert_int_equal(getaddrinfo("127.0.0.1", "no-such-service-here", &hints, &res),
                     EAI_SERVICE);
    assert_int_equal(tasks(), 1); /* no helper thread was needed */
    return NULL;
}

static void test_numeric_on_the_spot(void **state)
{
    hook_run(SP_HOOK_ON, numeric, NULL);
}

static struct addrinfo *libc_res;

static void *plain_lookup(void *unused)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    assert_int_equal(getaddrinfo("localhost", "80", &hints, &libc_res), 0);
    return NULL;
}

static void *by_name(void *unused)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res;
    assert_int_equal(getaddrinfo("localhost", "80", &hints, &res), 0);
    assert_int_equal(tasks(), 1 + POOL); /* it ran on the offload pool */
    assert_int_equal(res->ai_addrlen, libc_res->ai_addrlen);
    assert_memory_equal(res->ai_addr, libc_res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return NULL;
}

static void test_name_on_the_pool(void **state)
{
    pthread_t t; /* libc's answer, from a plain thread (hooks on, no coroutine) */
    sp_hook_enable(SP_HOOK_ON);
    assert_int_equal(pthread_create(&t, NULL, plain_lookup, NULL), 0);
    pthread_join(t, NULL);
    hook_run(SP_HOOK_ON, by_name, NULL);
    freeaddrinfo(libc_res);
}

int main(void)
{
    setenv("SPINDLE_OFFLOAD_THREADS", "2", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numeric_on_the_spot),
        cmocka_unit_test(test_name_on_the_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
