package dev.llmrelay.clients;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.springframework.ai.chat.client.ChatClient;
import org.springframework.ai.chat.messages.AssistantMessage;
import org.springframework.ai.converter.BeanOutputConverter;
import org.springframework.ai.openai.OpenAiChatOptions;
import org.springframework.ai.openai.api.OpenAiApi;
import org.springframework.ai.openai.api.ResponseFormat;
import org.springframework.ai.chat.model.ChatResponse;
import org.springframework.ai.tool.annotation.Tool;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;

import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * Spring AI's ChatClient, configured by its OpenAI starter the way a business service configures it,
 * calling a running gateway (-Dgateway.url, -Dgateway.key: tests/test_clients.py passes them).
 */
@EnabledIfSystemProperty(named = "gateway.url", matches = "http.*")
@SpringBootTest(classes = GatewayChatClientTest.App.class)
class GatewayChatClientTest {

    static final String QUESTION = "What is the capital of France?";

    @SpringBootApplication
    static class App {
    }

    @DynamicPropertySource
    static void gateway(DynamicPropertyRegistry registry) {
        registry.add("spring.ai.openai.base-url", () -> System.getProperty("gateway.url"));
        registry.add("spring.ai.openai.api-key", () -> System.getProperty("gateway.key"));
        registry.add("spring.ai.openai.chat.options.model", () -> "smollm2-135m-instruct");
        registry.add("spring.ai.openai.chat.options.temperature", () -> "0");
        registry.add("spring.ai.openai.chat.options.max-tokens", () -> "24");
    }

    @Autowired
    ChatClient.Builder builder;

    @Test
    void callAnswersWithUsage() {
        ChatResponse response = builder.build().prompt().user(QUESTION).call().chatResponse();
        assertThat(response.getResult().getOutput().getText()).contains("Paris");
        assertThat(response.getResult().getMetadata().getFinishReason()).isEqualToIgnoringCase("stop");
        assertThat(response.getMetadata().getUsage().getCompletionTokens()).isPositive();
    }

    @Test
    void streamReassemblesTheCalledAnswer() {
        ChatClient client = builder.build();
        String called = client.prompt().user(QUESTION).call().content();
        List<String> parts = client.prompt().user(QUESTION).stream().content().collectList().block();
        assertThat(parts).hasSizeGreaterThan(2); // really streamed, not one block
        assertThat(String.join("", parts)).isEqualTo(called);
    }

    record Capital(String country, String city) {
    }

    // every component required (Spring AI's schema requires only what @JsonProperty says), so the answer must
    // hold the list the model would extend
    record City(@JsonProperty(required = true) String name, @JsonProperty(required = true) String country,
            @JsonProperty(required = true) double populationMillions,
            @JsonProperty(required = true) List<String> landmarks) {
    }

    static class Weather {
        @Tool(description = "The current weather in a city")
        String weather(String city) {
            return "sunny in " + city;
        }
    }

    @Test
    void toolMethodsCallComesBackWithArgumentsForItsParameters() throws Exception {
        // a named function: the model-service's grammar guarantees the call (internal execution off: a forced
        // choice on every round would call the tool forever)
        OpenAiChatOptions options = OpenAiChatOptions.builder().maxTokens(128)
                .toolChoice(OpenAiApi.ChatCompletionRequest.ToolChoiceBuilder.FUNCTION("weather"))
                .internalToolExecutionEnabled(false).build();
        ChatResponse response = builder.build().prompt().user("What is the weather in Paris?").tools(new Weather())
                .options(options).call().chatResponse();
        List<AssistantMessage.ToolCall> calls = response.getResult().getOutput().getToolCalls();
        assertThat(calls).hasSize(1);
        assertThat(calls.get(0).name()).isEqualTo("weather");
        JsonNode arguments = new ObjectMapper().readTree(calls.get(0).arguments());
        assertThat(arguments.path("city").isTextual()).isTrue();
        assertThat(new Weather().weather(arguments.path("city").asText())).startsWith("sunny in ");
    }

    @Test
    void entityParsesARecordDecodedUnderItsJsonSchema() {
        String schema = new BeanOutputConverter<>(Capital.class).getJsonSchema();
        OpenAiChatOptions options = OpenAiChatOptions.builder().maxTokens(128).responseFormat(ResponseFormat.builder()
                .type(ResponseFormat.Type.JSON_SCHEMA).jsonSchema(schema).build()).build();
        Capital capital = builder.build().prompt().user(QUESTION).options(options).call().entity(Capital.class);
        assertThat(capital).isNotNull();
        assertThat(capital.country()).isNotNull();
        assertThat(capital.city()).isNotNull();
    }

    @Test
    void entityOfUnboundedListsParsesAtATightBudget() {
        // the small model would list landmarks until max_tokens cut the JSON; the model-service closes it in time
        String schema = new BeanOutputConverter<>(City.class).getJsonSchema();
        OpenAiChatOptions options = OpenAiChatOptions.builder().maxTokens(40).responseFormat(ResponseFormat.builder()
                .type(ResponseFormat.Type.JSON_SCHEMA).jsonSchema(schema).build()).build();
        ChatResponse response = builder.build().prompt().user("Give Paris with all of its landmarks as JSON.")
                .options(options).call().chatResponse();
        assertThat(response.getResult().getMetadata().getFinishReason()).isEqualToIgnoringCase("stop");
        assertThat(response.getMetadata().getUsage().getCompletionTokens()).isLessThanOrEqualTo(40);
        City city = new BeanOutputConverter<>(City.class).convert(response.getResult().getOutput().getText());
        assertThat(city).isNotNull();
        assertThat(city.landmarks()).isNotNull();
    }
}
