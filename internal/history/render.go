package history

import (
	"strings"

	yaml "go.yaml.in/yaml/v3"

	hide "github.com/netpulse/netpulse/internal/redact"
)

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

// secretKeys are configuration keys whose values the debug view hides.
var secretKeys = []string{"password", "token", "secret", "authorization", "headers"}

// redactedYAML renders a probe's configuration with secret-looking values
// replaced, so the read-only debug view never shows credentials.
func redactedYAML(cfg any) []byte {
	var node yaml.Node
	if err := node.Encode(cfg); err != nil {
		return []byte("# cannot render config: " + err.Error())
	}
	redact(&node)
	out, err := yaml.Marshal(&node)
	if err != nil {
		return []byte("# cannot render config: " + err.Error())
	}
	return out
}

func redact(n *yaml.Node) {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			secret := false
			for _, s := range secretKeys {
				if strings.Contains(strings.ToLower(k.Value), s) {
					secret = true
				}
			}
			if secret && !(v.Kind == yaml.ScalarNode && (v.Value == "" || v.Tag == "!!null")) {
				*v = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "<redacted>"}
				continue
			}
			redact(v)
		}
		return
	}
	if n.Kind == yaml.ScalarNode {
		n.Value = hide.URLs(n.Value) // a target URL's credentials
	}
	for _, c := range n.Content {
		redact(c)
	}
}
