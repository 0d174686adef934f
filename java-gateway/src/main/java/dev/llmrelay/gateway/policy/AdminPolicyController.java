package dev.llmrelay.gateway.policy;

import io.swagger.v3.oas.annotations.security.SecurityRequirement;
import io.swagger.v3.oas.annotations.tags.Tag;

import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RestController;

/** Which policy version this instance serves: after a change, each instance shows it within a poll. */
@Tag(name = "Admin: policies")
@SecurityRequirement(name = "adminToken")
@RestController
@RequestMapping("/admin/policy")
class AdminPolicyController {

    private final PolicyVersions versions;

    AdminPolicyController(PolicyVersions versions) {
        this.versions = versions;
    }

    record PolicyView(long version) {
    }

    @GetMapping
    PolicyView get() {
        return new PolicyView(versions.loadedVersion());
    }
}
