-- Optional prices per model, to turn usage into cost in reports (budgets stay in tokens).
CREATE TABLE model_price (
    model              VARCHAR(200)   NOT NULL PRIMARY KEY,
    input_per_million  DECIMAL(20, 6) NOT NULL,
    output_per_million DECIMAL(20, 6) NOT NULL,
    currency           VARCHAR(3)     NOT NULL
);
