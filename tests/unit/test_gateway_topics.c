/*  test_gateway_topics.c - the gateway's topic registry: following tells whether a topic is
    new, leaving tells which topics lost their last follower, and after any order of leaves
    every topic's array holds exactly its remaining followers, each knowing its place (checked
    against a plain model on thousands of random operations). */
#include "../../gateway/gateway_topics.h"
#include "unit_tests.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { S_FOLLOWERS = 300, S_TOPICS = 12 };

typedef struct {
    char names[S_TOPICS * 2][32];
    int count;
} s_lasts_t;

static void s_on_last(const char *name, void *arg)
{
    s_lasts_t *lasts = arg;
    snprintf(lasts->names[lasts->count++], sizeof lasts->names[0], "%s", name);
}

/* Every topic's followers are those the model says, each at the place it records. */
static void s_check(gateway_topics_t *topics, gateway_follower_t *followers,
                    bool model[S_FOLLOWERS][S_TOPICS])
{
    for (int t = 0; t < S_TOPICS; t++) {
        char name[32];
        snprintf(name, sizeof name, "conv.t.T-%d", t);
        gateway_topic_t *topic = gateway_topics_find(topics, name);
        uint32_t expected = 0;
        for (int f = 0; f < S_FOLLOWERS; f++) {
            expected += model[f][t];
            assert_int_equal(gateway_follower_follows(&followers[f], name), model[f][t]);
        }
        if (!expected) {
            assert_null(topic);
            continue;
        }
        assert_non_null(topic);
        assert_int_equal(topic->count, expected);
        for (uint32_t i = 0; i < topic->count; i++) {
            gateway_follower_t *follower = topic->followers[i];
            int f = (int)(follower - followers);
            assert_true(f >= 0 && f < S_FOLLOWERS && model[f][t]);
            bool placed = false;
            for (uint32_t k = 0; k < follower->count; k++)
                placed = placed || (follower->topics[k].topic == topic &&
                                    follower->topics[k].slot == i);
            assert_true(placed);
        }
    }
}

static void test_follow_and_leave_match_a_model(void **state)
{
    (void)state;
    gateway_topics_t *topics = gateway_topics_new();
    assert_non_null(topics);
    static gateway_follower_t followers[S_FOLLOWERS];
    static bool model[S_FOLLOWERS][S_TOPICS];
    memset(followers, 0, sizeof followers);
    memset(model, 0, sizeof model);
    unsigned seed = 7;
    for (int round = 0; round < 4000; round++) {
        int f = rand_r(&seed) % S_FOLLOWERS;
        if (rand_r(&seed) % 4) {
            int t = rand_r(&seed) % S_TOPICS;
            char name[32];
            snprintf(name, sizeof name, "conv.t.T-%d", t);
            bool nobody = true;
            for (int g = 0; g < S_FOLLOWERS; g++)
                nobody = nobody && !model[g][t];
            int rc = gateway_topics_follow(topics, &followers[f], name, S_TOPICS);
            assert_int_equal(rc, !model[f][t] && nobody ? 1 : 0);
            model[f][t] = true;
        } else {
            s_lasts_t lasts = {0};
            bool was[S_TOPICS];
            memcpy(was, model[f], sizeof was);
            memset(model[f], 0, sizeof model[f]);
            gateway_topics_leave_all(topics, &followers[f], s_on_last, &lasts);
            assert_int_equal(followers[f].count, 0);
            int expected = 0;
            for (int t = 0; t < S_TOPICS; t++) {
                bool others = false;
                for (int g = 0; g < S_FOLLOWERS; g++)
                    others = others || model[g][t];
                expected += was[t] && !others;
            }
            assert_int_equal(lasts.count, expected);
        }
        if (round % 200 == 0)
            s_check(topics, followers, model);
    }
    s_check(topics, followers, model);
    for (int f = 0; f < S_FOLLOWERS; f++)
        gateway_topics_leave_all(topics, &followers[f], NULL, NULL);
    for (int t = 0; t < S_TOPICS; t++) {
        char name[32];
        snprintf(name, sizeof name, "conv.t.T-%d", t);
        assert_null(gateway_topics_find(topics, name));
    }
    gateway_topics_destroy(&topics);
    assert_null(topics);
}

static void test_limit_and_repeats(void **state)
{
    (void)state;
    gateway_topics_t *topics = gateway_topics_new();
    gateway_follower_t follower = {0};
    assert_int_equal(gateway_topics_follow(topics, &follower, "project.t.SUP", 2), 1);
    assert_int_equal(gateway_topics_follow(topics, &follower, "project.t.SUP", 2), 0);
    assert_int_equal(follower.count, 1);
    assert_int_equal(gateway_topics_follow(topics, &follower, "conv.t.SUP-1", 2), 1);
    assert_int_equal(gateway_topics_follow(topics, &follower, "conv.t.SUP-2", 2), -1);
    assert_false(gateway_follower_follows(&follower, "conv.t.SUP-2"));
    gateway_topics_destroy(&topics); /* with a follower still in: the topics go, not it */
    free(follower.topics);
}

int test_gateway_topics_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_follow_and_leave_match_a_model),
        cmocka_unit_test(test_limit_and_repeats),
    };
    return cmocka_run_group_tests_name("gateway_topics", tests, NULL, NULL);
}
