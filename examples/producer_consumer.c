/* The classic coroutine example: a producer fills a queue and hands the CPU
 * straight to the consumer with sp_yield_to; the consumer empties it and
 * hands it back.  No scheduler decision sits between them: each transfer is
 * one context switch.
 *
 *   $ build/examples/producer_consumer 20
 */
#include <spindle.h>
#include <stdio.h>
#include <stdlib.h>

#define QUEUE_CAP 4

static int queue[QUEUE_CAP], queued;
static int total, produced, consumed;
static sp_co *producer_co, *consumer_co;

static void *producer(void *arg)
{
    while (produced < total) {
        while (queued < QUEUE_CAP && produced < total)
            queue[queued++] = ++produced;
        printf("producer: queued up to %d, over to the consumer\n", produced);
        sp_yield_to(consumer_co);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    long sum = 0;
    while (consumed < total) {
        for (int i = 0; i < queued; i++, consumed++)
            sum += queue[i];
        printf("consumer: took %d items (sum %ld)%s\n", queued, sum,
               consumed < total ? ", back to the producer" : "");
        queued = 0;
        if (consumed < total)
            sp_yield_to(producer_co);
    }
    return (void *)sum;
}

int main(int argc, char **argv)
{
    total = argc > 1 ? atoi(argv[1]) : 10;
    if (total <= 0) {
        fprintf(stderr, "usage: %s [count > 0]\n", argv[0]);
        return 2;
    }
    consumer_co = sp_spawn(consumer, NULL, NULL);
    producer_co = sp_spawn(producer, NULL, NULL);
    void *sum;
    sp_join(producer_co, NULL);
    sp_join(consumer_co, &sum);
    printf("done: %d items, sum %ld\n", total, (long)sum);
    return 0;
}
