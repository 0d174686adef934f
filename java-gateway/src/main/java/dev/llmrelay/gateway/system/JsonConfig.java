package dev.llmrelay.gateway.system;

import org.springframework.boot.autoconfigure.jackson.Jackson2ObjectMapperBuilderCustomizer;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

import com.fasterxml.jackson.core.SerializableString;
import com.fasterxml.jackson.core.io.CharacterEscapes;
import com.fasterxml.jackson.core.io.SerializedString;

/**
 * JSON written by the gateway escapes every surrogate code unit ({@code \ud800}). A lone surrogate is
 * legal JSON text a client may send; written raw into a Java string (writeValueAsString, then
 * UTF-8 bytes, as stream events are) it would turn into {@code ?}. Escaped, it survives any encoding.
 */
@Configuration(proxyBeanMethods = false)
class JsonConfig {

    @Bean
    Jackson2ObjectMapperBuilderCustomizer escapeSurrogates() {
        return builder -> builder.postConfigurer(mapper -> mapper.getFactory().setCharacterEscapes(
                new SurrogateEscapes()));
    }

    /** JSON's standard escapes, plus {@code \\uXXXX} for U+D800..U+DFFF (pairs too: same text, valid JSON). */
    static final class SurrogateEscapes extends CharacterEscapes {

        private static final int[] ASCII = standardAsciiEscapesForJSON();

        @Override
        public int[] getEscapeCodesForAscii() {
            return ASCII;
        }

        @Override
        public SerializableString getEscapeSequence(int ch) {
            return Character.isSurrogate((char) ch) ? new SerializedString(String.format("\\u%04x", ch)) : null;
        }
    }
}
