package io.walletlake.connect.config;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.net.URI;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;
import org.apache.kafka.common.config.ConfigData;
import org.apache.kafka.common.config.ConfigException;
import org.apache.kafka.common.config.provider.ConfigProvider;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.secretsmanager.SecretsManagerClient;
import software.amazon.awssdk.services.secretsmanager.SecretsManagerClientBuilder;
import software.amazon.awssdk.services.secretsmanager.model.ResourceNotFoundException;

/**
 * A Kafka config provider for AWS Secrets Manager. In a connector config,
 * {@code ${secretsManager:<secret-name>:<key>}} resolves inside the worker to the field {@code key}
 * of the secret's SecretString when that is a JSON object, otherwise to the whole SecretString
 * (the rules of wallet_lake/security/secrets.py). The connector's stored config, its REST answers
 * and the config topic keep the reference, never the value.
 *
 * <p>Parameters ({@code config.providers.<alias>.param.*}):
 * <ul>
 *   <li>{@code allowlist.pattern} (required): a regular expression the whole secret name must
 *       match; any other secret is refused, so a connector cannot read the worker's other secrets
 *       (Kafka's EnvVarConfigProvider has the same parameter for variables).
 *   <li>{@code region}: the AWS region (default: the SDK's region chain).
 *   <li>{@code endpoint}: an endpoint override (a VPC endpoint; the local AWS API in tests).
 * </ul>
 * Credentials come from the SDK's default chain (the worker's IAM role on AWS), so the worker
 * file holds nothing secret. Use secret names, not ARNs: Connect's {@code ${provider:path:key}}
 * syntax splits at the first colon after the provider.
 */
public class SecretsManagerConfigProvider implements ConfigProvider {
    public static final String ALLOWLIST_PATTERN = "allowlist.pattern";
    public static final String REGION = "region";
    public static final String ENDPOINT = "endpoint";

    private static final Logger log = LoggerFactory.getLogger(SecretsManagerConfigProvider.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    private Pattern allowlist;
    private SecretsManagerClient client;

    @Override
    public void configure(Map<String, ?> configs) {
        String pattern = param(configs, ALLOWLIST_PATTERN);
        if (pattern == null) {
            // Fail the worker's start: without it any connector could read any secret the role can.
            throw new ConfigException(ALLOWLIST_PATTERN, null, "required: a regular expression of the secret names connectors may use");
        }
        allowlist = Pattern.compile(pattern);
        SecretsManagerClientBuilder builder = SecretsManagerClient.builder().httpClientBuilder(UrlConnectionHttpClient.builder());
        String region = param(configs, REGION);
        if (region != null) {
            builder.region(Region.of(region));
        }
        String endpoint = param(configs, ENDPOINT);
        if (endpoint != null) {
            builder.endpointOverride(URI.create(endpoint));
        }
        client = builder.build();
        log.info("Secrets Manager config provider: region {}, endpoint {}, secrets matching {}",
                region == null ? "(SDK default)" : region, endpoint == null ? "(AWS)" : endpoint, pattern);
    }

    private static String param(Map<String, ?> configs, String name) {
        Object value = configs.get(name);
        return value == null || value.toString().isBlank() ? null : value.toString().trim();
    }

    /** Every field of the secret (a JSON object). */
    @Override
    public ConfigData get(String path) {
        Map<String, String> fields = fields(path, read(path));
        if (fields == null) {
            throw new ConfigException("secret " + path + " is not a JSON object: name the key to read");
        }
        return new ConfigData(fields);
    }

    @Override
    public ConfigData get(String path, Set<String> keys) {
        String text = read(path);
        Map<String, String> fields = fields(path, text);
        Map<String, String> data = new HashMap<>();
        for (String key : keys) {
            String value = fields == null ? text : fields.get(key);
            if (value == null) {
                throw new ConfigException("secret " + path + " has no key " + key);
            }
            data.put(key, value);
        }
        return new ConfigData(data);
    }

    private String read(String path) {
        if (path == null || !allowlist.matcher(path).matches()) {
            // Refused loudly (the connector fails with this message), never looked up.
            throw new ConfigException("secret " + path + " is not allowed by this worker's " + ALLOWLIST_PATTERN + " " + allowlist);
        }
        try {
            return client.getSecretValue(r -> r.secretId(path)).secretString();
        } catch (ResourceNotFoundException e) {
            throw new ConfigException("secret " + path + " does not exist in Secrets Manager");
        } catch (SdkException e) {
            throw new ConfigException("reading secret " + path + " from Secrets Manager failed: " + e.getMessage());
        }
    }

    /** The fields of a JSON-object SecretString, or null when it is anything else. */
    private static Map<String, String> fields(String path, String text) {
        if (text == null) {
            throw new ConfigException("secret " + path + " has no SecretString (binary secrets are not supported)");
        }
        JsonNode doc;
        try {
            doc = JSON.readTree(text);
        } catch (JsonProcessingException e) {
            return null;
        }
        if (doc == null || !doc.isObject()) {
            return null;
        }
        Map<String, String> fields = new HashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = doc.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> f = it.next();
            fields.put(f.getKey(), f.getValue().isTextual() ? f.getValue().asText() : f.getValue().toString());
        }
        return fields;
    }

    @Override
    public void close() {
        if (client != null) {
            client.close();
        }
    }
}
