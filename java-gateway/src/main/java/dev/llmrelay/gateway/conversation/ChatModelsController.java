package dev.llmrelay.gateway.conversation;

import java.util.List;

import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RestController;

import io.swagger.v3.oas.annotations.media.Schema;
import io.swagger.v3.oas.annotations.security.SecurityRequirement;
import io.swagger.v3.oas.annotations.tags.Tag;

/** The models the page's picker offers, and the one a conversation without a choice uses. */
@Tag(name = "Browser API")
@SecurityRequirement(name = BrowserWebConfig.SECURITY)
@RestController
@RequestMapping("/api/chat/models")
class ChatModelsController {

    private final ChatModels models;

    ChatModelsController(ChatModels models) {
        this.models = models;
    }

    // own schema names: the /v1 route's ModelList and Model (OpenAI's shape) are other schemas
    @Schema(name = "ChatModel")
    record Model(String id) {
    }

    /** {@code default} is a Java keyword, hence the component's other name. */
    @Schema(name = "ChatModelList")
    record ModelList(List<Model> models,
            @com.fasterxml.jackson.annotation.JsonProperty("default")
            @Schema(name = "default", types = {"string", "null"}, description = "the model of a conversation that names none")
            String defaultModel) {
    }

    @GetMapping
    ModelList list(BrowserSession session) {
        return new ModelList(models.offered().stream().map(Model::new).toList(), models.defaultModel());
    }
}
