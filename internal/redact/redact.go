// Package redact hides credentials in what the agent shows: the userinfo
// of URLs (http://user:pass@host) in any text, and the values of headers
// or keys named like secrets. Every surface that renders configuration or
// errors (the API, the debug view, logs, span attributes, history records)
// passes through it, so a credential in a target URL shows nowhere even when
// a probe type, an error message or a library prints the URL.
package redact

import (
	"regexp"
	"strings"
)

// Mask replaces what is hidden.
const Mask = "xxxxx"

// userinfo matches a URL's scheme and userinfo ("https://user:pass@"): the
// userinfo is everything between "//" and the first "@" before any "/",
// "?", "#", white space or quote.
var userinfo = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.\-]*://)([^/?#@\s"'<>]+)@`)

// URLs returns s with the userinfo of every URL in it hidden: a password
// becomes Mask (user:xxxxx@, as net/url's Redacted shows it), and a user
// name alone becomes Mask too (https://TOKEN@host is a common way to pass a
// token). Text without "://" is returned as it is, at little cost.
func URLs(s string) string {
	if !strings.Contains(s, "@") || !strings.Contains(s, "://") {
		return s
	}
	return userinfo.ReplaceAllStringFunc(s, func(m string) string {
		sub := userinfo.FindStringSubmatch(m)
		scheme, info := sub[1], sub[2]
		if user, _, hasPassword := strings.Cut(info, ":"); hasPassword {
			return scheme + user + ":" + Mask + "@"
		}
		return scheme + Mask + "@"
	})
}

// secretWords are parts of names (headers, configuration keys) whose values
// are credentials.
var secretWords = []string{"authorization", "cookie", "token", "key", "secret", "password", "auth", "session",
	"credential"}

// SecretName tells whether a header or key named name holds a credential,
// by name (Authorization, Cookie) or by look (*token*, *key*, *secret*).
func SecretName(name string) bool {
	n := strings.ToLower(name)
	for _, s := range secretWords {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// Error is err with its message passed through URLs; errors.Is and As see
// the original through Unwrap. Nil stays nil, and an error whose message
// has nothing to hide is returned as it is.
func Error(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if r := URLs(msg); r != msg {
		return &redactedError{msg: r, err: err}
	}
	return err
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
