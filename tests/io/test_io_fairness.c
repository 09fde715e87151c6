/* Busy coroutines do not starve I/O or timers: the scheduler looks at them
 * at least once a round even when the ready queue never empties. */
#include "sp_test.h"
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

static volatile int done;

static void *busy(void *arg)
{
    long spins = 0;
    while (!done && spins < 50000000)
        spins++, sp_yield();
    return IP(spins);
}

static void *late_writer(void *arg)
{
    usleep(20000);
    ssize_t w = write((int)PI(arg), "ping", 4);
    (void)w;
    return NULL;
}

static void *reader(void *arg)
{
    char buf[8];
    ssize_t n = sp_read((int)PI(arg), buf, sizeof buf, sp_deadline_ms(5000));
    done = 1;
    return IP(n);
}

static void test_io_not_starved(void **state)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    done = 0;
    sp_co *b1 = sp_spawn(busy, NULL, NULL), *b2 = sp_spawn(busy, NULL, NULL);
    sp_co *r = sp_spawn(reader, IP(sv[0]), NULL);
    pthread_t t;
    pthread_create(&t, NULL, late_writer, IP(sv[1]));
    void *n;
    sp_join(r, &n);
    assert_int_equal(PI(n), 4); /* not ETIMEDOUT: the read was seen */
    sp_join(b1, NULL);
    sp_join(b2, NULL);
    pthread_join(t, NULL);
    sp_close(sv[0]);
    close(sv[1]);
}

static void *sleeper(void *arg)
{
    sp_sleep_ms(10);
    done = 1;
    return NULL;
}

static void test_timers_not_starved(void **state)
{
    done = 0;
    sp_co *b = sp_spawn(busy, NULL, NULL);
    sp_co *s = sp_spawn(sleeper, NULL, NULL);
    void *spins;
    sp_join(s, NULL);
    sp_join(b, &spins);
    assert_true(PI(spins) < 50000000); /* stopped by the sleeper, not the cap */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_io_not_starved),
        cmocka_unit_test(test_timers_not_starved),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
