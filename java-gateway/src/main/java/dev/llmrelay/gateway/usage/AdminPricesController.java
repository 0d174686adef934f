package dev.llmrelay.gateway.usage;

import java.math.BigDecimal;
import java.util.List;
import java.util.Set;

import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.DeleteMapping;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.PutMapping;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RestController;

import com.fasterxml.jackson.databind.JsonNode;

import io.swagger.v3.oas.annotations.media.Content;
import io.swagger.v3.oas.annotations.media.Schema;
import io.swagger.v3.oas.annotations.responses.ApiResponse;
import io.swagger.v3.oas.annotations.security.SecurityRequirement;
import io.swagger.v3.oas.annotations.tags.Tag;

import dev.llmrelay.gateway.system.ApiProblem;

/** Prices per model (per million tokens, input and output, one currency): usage reports then carry cost. */
@Tag(name = "Admin: usage")
@SecurityRequirement(name = "adminToken")
@RestController
@RequestMapping("/admin/prices")
class AdminPricesController {

    private static final Set<String> MEMBERS = Set.of("inputPerMillion", "outputPerMillion", "currency");
    private static final BigDecimal MAX = new BigDecimal("1000000000");

    private final ModelPrices prices;

    AdminPricesController(ModelPrices prices) {
        this.prices = prices;
    }

    record PriceList(List<ModelPrices.Price> prices) {
    }

    @Schema(additionalProperties = Schema.AdditionalPropertiesValue.FALSE)
    record PriceBody(@Schema(requiredMode = Schema.RequiredMode.REQUIRED, minimum = "0") BigDecimal inputPerMillion,
            @Schema(requiredMode = Schema.RequiredMode.REQUIRED, minimum = "0") BigDecimal outputPerMillion,
            @Schema(requiredMode = Schema.RequiredMode.REQUIRED, pattern = "^[A-Z]{3}$",
                    description = "ISO 4217 code, e.g. USD, CNY") String currency) {
    }

    @GetMapping
    PriceList list() {
        return new PriceList(prices.all());
    }

    @io.swagger.v3.oas.annotations.parameters.RequestBody(content = @Content(mediaType = "application/json",
            schema = @Schema(implementation = PriceBody.class)))
    @PutMapping("/models/{model}")
    ModelPrices.Price put(@PathVariable String model, @RequestBody JsonNode body) {
        if (model.isBlank() || model.length() > 200) {
            throw ApiProblem.badRequest("The model must be 1 to 200 characters.");
        }
        if (body == null || !body.isObject()) {
            throw ApiProblem.badRequest("The body must be {\"inputPerMillion\", \"outputPerMillion\", \"currency\"}.");
        }
        ApiProblem.requireKnownMembers(body, MEMBERS);
        ModelPrices.Price price = new ModelPrices.Price(model, amount(body, "inputPerMillion"),
                amount(body, "outputPerMillion"), currency(body));
        prices.put(price);
        return price;
    }

    @ApiResponse(responseCode = "204", description = "Removed")
    @DeleteMapping("/models/{model}")
    ResponseEntity<Void> delete(@PathVariable String model) {
        if (!prices.delete(model)) {
            throw ApiProblem.notFound("No price for the model '" + model + "'.");
        }
        return ResponseEntity.noContent().build();
    }

    private static BigDecimal amount(JsonNode body, String member) {
        JsonNode value = body.get(member);
        if (value == null || !value.isNumber() || value.decimalValue().signum() < 0 || value.decimalValue().compareTo(MAX) > 0
                || value.decimalValue().scale() > 6) {
            throw ApiProblem.badRequest(member + " must be a number from 0 to 1e9 with at most 6 decimals.");
        }
        return value.decimalValue();
    }

    private static String currency(JsonNode body) {
        JsonNode value = body.get("currency");
        if (value == null || !value.isTextual() || !value.asText().matches("[A-Z]{3}")) {
            throw ApiProblem.badRequest("currency must be an ISO 4217 code of three capital letters, e.g. USD or CNY.");
        }
        return value.asText();
    }
}
