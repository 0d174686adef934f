package dev.llmrelay.gateway.policy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.transaction.support.TransactionTemplate;

import dev.llmrelay.gateway.support.GatewayTestSupport;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;

/**
 * The live-policy mechanism on its own: a change is all-or-nothing, live at once where it was made, and
 * reaches a second instance (a second PolicyVersions on the same database, as another gateway process
 * would run) by its poll.
 */
class PolicyVersionsTest extends GatewayTestSupport {

    @Autowired
    PolicyVersions versions;
    @Autowired
    TransactionTemplate transactions;

    private List<String> rules() {
        return jdbc.sql("SELECT name FROM policy_versions_test_rule ORDER BY name").query(String.class).list();
    }

    @Test
    void aChangeIsLiveAtOnceHereAndAfterAPollOnAnotherInstanceAndAFailedChangeLeavesNothing() throws Exception {
        jdbc.sql("CREATE TABLE IF NOT EXISTS policy_versions_test_rule (name VARCHAR(50))").update();
        jdbc.sql("DELETE FROM policy_versions_test_rule").update();
        versions.change(() -> null); // start from a version both instances load below
        LiveSnapshot<List<String>> here = versions.register("test-rules-here", this::rules);
        PolicyVersions other = new PolicyVersions(jdbc, transactions,
                new PolicyProperties(Duration.ofMillis(50), 100), new SimpleMeterRegistry());
        LiveSnapshot<List<String>> there = other.register("test-rules-there", this::rules);
        other.start();
        try {
            long before = versions.loadedVersion();
            versions.change(() -> jdbc.sql("INSERT INTO policy_versions_test_rule VALUES ('a')").update());
            assertThat(here.get()).containsExactly("a");
            assertThat(versions.loadedVersion()).isEqualTo(before + 1);
            awaitTrue("the other instance polled the new version", () -> other.loadedVersion() == before + 1);
            assertThat(there.get()).containsExactly("a");

            assertThatThrownBy(() -> versions.change(() -> {
                jdbc.sql("INSERT INTO policy_versions_test_rule VALUES ('b')").update();
                throw new IllegalArgumentException("second half failed");
            })).isInstanceOf(IllegalArgumentException.class);
            assertThat(rules()).containsExactly("a");
            assertThat(versions.loadedVersion()).isEqualTo(before + 1);
            assertThat(jdbc.sql("SELECT version FROM policy_version").query(Long.class).single())
                    .isEqualTo(before + 1);
        } finally {
            other.stop();
        }
    }
}
