/*  test_deadline_heap.c - items come out in deadline order, and early removal works anywhere
    in the heap. */
#include "unit_tests.h"
#include "../../common/deadline_heap.h"

#include <stdlib.h>

typedef struct {
    int64_t deadline;
    size_t slot;
    int removed;
} s_item_t;

static void test_pops_in_deadline_order_with_removals(void **state)
{
    (void)state;
    enum { N = 5000 };
    s_item_t *items = calloc(N, sizeof *items);
    deadline_heap_t *heap = deadline_heap_new();
    srandom(7);
    for (int i = 0; i < N; i++) {
        items[i].deadline = random() % 100000;
        items[i].slot = DEADLINE_HEAP_NONE;
        assert_int_equal(deadline_heap_push(heap, items[i].deadline, &items[i], &items[i].slot), 0);
    }
    for (int i = 0; i < N; i += 3) {
        deadline_heap_remove(heap, &items[i].slot);
        items[i].removed = 1;
        assert_true(items[i].slot == DEADLINE_HEAP_NONE);
        deadline_heap_remove(heap, &items[i].slot); /* twice is harmless */
    }
    assert_int_equal(deadline_heap_size(heap), N - (N + 2) / 3);
    assert_null(deadline_heap_pop_expired(heap, -1));
    int64_t last = -1;
    size_t popped = 0;
    s_item_t *item;
    while ((item = deadline_heap_pop_expired(heap, INT64_MAX))) {
        assert_false(item->removed);
        assert_true(item->deadline >= last);
        last = item->deadline;
        popped++;
    }
    assert_int_equal(popped, N - (N + 2) / 3);
    assert_true(deadline_heap_next_ms(heap) == INT64_MAX);
    deadline_heap_destroy(&heap);
    assert_null(heap);
    free(items);
}

int test_deadline_heap_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pops_in_deadline_order_with_removals),
    };
    return cmocka_run_group_tests_name("deadline_heap", tests, NULL, NULL);
}
