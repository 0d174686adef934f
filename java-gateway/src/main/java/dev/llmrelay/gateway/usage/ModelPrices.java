package dev.llmrelay.gateway.usage;

import java.math.BigDecimal;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.stream.Collectors;

import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.stereotype.Repository;
import org.springframework.transaction.annotation.Transactional;

import dev.llmrelay.gateway.system.StoredText;

/** What a model's tokens cost (per million, input and output, in one currency), for reports. */
@Repository
class ModelPrices {

    record Price(String model, BigDecimal inputPerMillion, BigDecimal outputPerMillion, String currency) {

        BigDecimal cost(long promptTokens, long completionTokens) {
            return inputPerMillion.multiply(BigDecimal.valueOf(promptTokens))
                    .add(outputPerMillion.multiply(BigDecimal.valueOf(completionTokens)))
                    .divide(BigDecimal.valueOf(1_000_000));
        }
    }

    private final JdbcClient jdbc;

    ModelPrices(JdbcClient jdbc) {
        this.jdbc = jdbc;
    }

    List<Price> all() {
        return jdbc.sql("SELECT model, input_per_million, output_per_million, currency FROM model_price ORDER BY model")
                .query((rs, i) -> new Price(StoredText.decode(rs.getString(1)), rs.getBigDecimal(2), rs.getBigDecimal(3),
                        rs.getString(4))).list();
    }

    Map<String, Price> byModel() {
        return all().stream().collect(Collectors.toMap(Price::model, Function.identity()));
    }

    @Transactional
    void put(Price price) {
        String model = StoredText.encode(price.model());
        if (jdbc.sql("UPDATE model_price SET input_per_million = ?, output_per_million = ?, currency = ? WHERE model = ?")
                .params(price.inputPerMillion(), price.outputPerMillion(), price.currency(), model).update() == 0) {
            jdbc.sql("INSERT INTO model_price (model, input_per_million, output_per_million, currency) VALUES (?, ?, ?, ?)")
                    .params(model, price.inputPerMillion(), price.outputPerMillion(), price.currency()).update();
        }
    }

    boolean delete(String model) {
        return jdbc.sql("DELETE FROM model_price WHERE model = ?").param(StoredText.encode(model)).update() > 0;
    }
}
