package history

import yaml "go.yaml.in/yaml/v3"

// RenderConfig returns a probe configuration as Store.Config returns it
// once stored: secrets redacted, decoded from YAML so that it keeps the
// configuration file's field names. It is the store's rendering, not a
// view's, because redaction happens before a configuration is written:
// a run's configuration reads the same before and after it is stored.
func RenderConfig(cfg any) any {
	var out any
	if err := yaml.Unmarshal(redactedYAML(cfg), &out); err != nil {
		return nil
	}
	return out
}

// ErrorText is a run's error text as the store keeps it: bounded to
// maxErrorText bytes ("" for no error).
func ErrorText(err error) string {
	if err == nil {
		return ""
	}
	text := err.Error()
	if len(text) > maxErrorText {
		text = text[:maxErrorText] + "…"
	}
	return text
}
