package dev.llmrelay.gateway.safety;

import java.util.List;

import io.swagger.v3.oas.annotations.responses.ApiResponse;
import io.swagger.v3.oas.annotations.security.SecurityRequirement;
import io.swagger.v3.oas.annotations.tags.Tag;

import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.DeleteMapping;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.PutMapping;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RestController;

import dev.llmrelay.gateway.safety.ContentFilterLists.EntriesChange;
import dev.llmrelay.gateway.safety.ContentFilterLists.ListChange;
import dev.llmrelay.gateway.safety.FilterRules.ListRules;

/** Admin API for content-filter lists; changes are live on every instance within a poll interval. */
@Tag(name = "Admin: content filter")
@SecurityRequirement(name = "adminToken")
@RestController
@RequestMapping("/admin/content-filter")
class AdminContentFilterController {

    private final ContentFilterLists lists;

    AdminContentFilterController(ContentFilterLists lists) {
        this.lists = lists;
    }

    /** A list without its entries (they can be many). */
    record ListSummary(String name, String action, boolean checkPrompt, int words, int patterns) {
        static ListSummary of(ListRules l) {
            return new ListSummary(l.name(), l.action().name(), l.checkPrompt(), l.words().size(),
                    l.patterns().size());
        }
    }

    @GetMapping("/lists")
    List<ListSummary> lists() {
        return lists.lists().stream().map(ListSummary::of).toList();
    }

    @GetMapping("/lists/{name}")
    ListRules list(@PathVariable String name) {
        return lists.find(name).orElseThrow(() -> ContentFilterLists.notFound(name));
    }

    @PutMapping("/lists/{name}")
    ListRules replace(@PathVariable String name, @RequestBody(required = false) ListChange change) {
        return lists.replace(name, change);
    }

    @PostMapping("/lists/{name}/entries")
    ListSummary add(@PathVariable String name, @RequestBody(required = false) EntriesChange change) {
        return ListSummary.of(lists.add(name, change));
    }

    @ApiResponse(responseCode = "204", description = "Deleted")
    @DeleteMapping("/lists/{name}")
    ResponseEntity<Void> delete(@PathVariable String name) {
        lists.delete(name);
        return ResponseEntity.noContent().build();
    }

    @GetMapping("/hits")
    List<ContentFilterRepository.HitRow> hits(@RequestParam(defaultValue = "100") int limit) {
        return lists.hits(limit);
    }
}
