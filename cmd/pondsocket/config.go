package main

import (
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// The configuration file (--config / PONDSOCKET_CONFIG) holds every setting
// a flag holds, under the flag's name with '_' for '-' (max_connections),
// or under the nested key of fileKeyOf (auth.jwt.hmac_secret), plus the
// application: endpoints, their channels and events. Its values go through
// the flags' own parsers; flags and environment variables override it.

// fileKeyOf names the file key of flags that live in a section.
var fileKeyOf = map[string]string{
	"jwt-hmac-secret":     "auth.jwt.hmac_secret",
	"jwt-public-key-file": "auth.jwt.public_key_file",
	"jwt-jwks-url":        "auth.jwt.jwks_url",
	"jwt-jwks-refresh":    "auth.jwt.jwks_refresh",
	"jwt-issuer":          "auth.jwt.issuer",
	"jwt-audience":        "auth.jwt.audience",
	"api-key":             "api.key",
	"api-addr":            "api.addr",
	"api-max-body-bytes":  "api.max_body_bytes",

	"proxy-connect-url":     "proxy.connect_url",
	"proxy-join-url":        "proxy.join_url",
	"proxy-event-url":       "proxy.event_url",
	"proxy-timeout":         "proxy.timeout",
	"proxy-forward-headers": "proxy.forward_headers",
	"proxy-max-connections": "proxy.max_connections",
}

// fileKey is the configuration file's key of a flag.
func fileKey(flagName string) string {
	if k, ok := fileKeyOf[flagName]; ok {
		return k
	}
	return strings.ReplaceAll(flagName, "-", "_")
}

// fileValue is one setting read from the file.
type fileValue struct {
	key   string // as written: auth.jwt.hmac_secret
	line  int
	value string // in the flag's syntax
}

func (v fileValue) source(path string) string {
	return fmt.Sprintf("%s: %s (line %d)", path, v.key, v.line)
}

// appConfig is the application of the file.
type appConfig struct {
	Endpoints []endpointConfig
}

type endpointConfig struct {
	Path     string
	Channels []channelConfig
}

type channelConfig struct {
	Pattern  string
	Presence bool
	Events   map[string]string // event name or pattern → eventModes
	// eventOrder is the events' order in the file: the first pattern
	// that matches an event decides (so "*" can come last as a default)
	eventOrder []string
	eventLines map[string]int
	line       int
}

// eventModes are the answers to a client event a file can choose; proxy
// asks the backend at proxy.event_url (proxy.go).
var eventModes = map[string]bool{"broadcast": true, "broadcast_from": true, "reply": true, "forbidden": true, "proxy": true}

const eventModesText = "broadcast, broadcast_from, reply, forbidden or proxy"

// maxConfigFileBytes bounds the file read (a configuration, not data).
const maxConfigFileBytes = 4 << 20

// loadConfigFile reads the file: the flag settings by flag name (flags lists
// the settable flag names) and the application.
func loadConfigFile(path string, flags map[string]bool) (map[string]fileValue, *appConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	if len(data) > maxConfigFileBytes {
		return nil, nil, fmt.Errorf("%s: larger than %d bytes", path, maxConfigFileBytes)
	}
	byKey := map[string]string{}
	for name := range flags {
		byKey[fileKey(name)] = name
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	vals := map[string]fileValue{}
	app := &appConfig{}
	if len(doc.Content) == 0 {
		return nil, nil, fmt.Errorf("%s: empty", path)
	}
	bad := func(n *yaml.Node, key, format string, args ...any) error {
		return fmt.Errorf("%s: %s (line %d): %s", path, key, n.Line, fmt.Sprintf(format, args...))
	}
	var walk func(prefix string, m *yaml.Node) error
	walk = func(prefix string, m *yaml.Node) error {
		if m.Kind != yaml.MappingNode {
			return bad(m, strings.TrimSuffix(prefix, "."), "must be a mapping")
		}
		for i := 0; i+1 < len(m.Content); i += 2 {
			k, v := m.Content[i], m.Content[i+1]
			key := prefix + k.Value
			switch {
			case key == "endpoints":
				eps, err := parseEndpoints(v, bad)
				if err != nil {
					return err
				}
				app.Endpoints = eps
				continue
			case v.Kind == yaml.MappingNode:
				if err := walk(key+".", v); err != nil {
					return err
				}
				continue
			}
			name, ok := byKey[key]
			if !ok {
				return bad(k, key, "unknown key")
			}
			var s string
			switch v.Kind {
			case yaml.ScalarNode:
				if v.Tag != "!!null" {
					s = v.Value
				}
			case yaml.SequenceNode: // lists: the flags' comma-separated syntax
				var items []string
				for _, it := range v.Content {
					if it.Kind != yaml.ScalarNode {
						return bad(it, key, "list items must be plain values")
					}
					items = append(items, it.Value)
				}
				s = strings.Join(items, ",")
			default:
				return bad(v, key, "must be a plain value")
			}
			vals[name] = fileValue{key: key, line: k.Line, value: s}
		}
		return nil
	}
	if err := walk("", doc.Content[0]); err != nil {
		return nil, nil, err
	}
	if len(app.Endpoints) == 0 {
		return nil, nil, fmt.Errorf("%s: endpoints: at least one endpoint is needed (without a configuration file the demo runs)", path)
	}
	return vals, app, nil
}

type badFunc func(n *yaml.Node, key, format string, args ...any) error

// parseEndpoints reads the endpoints list, naming each bad key with its
// index: endpoints[0].channels[1].events.typing.
func parseEndpoints(n *yaml.Node, bad badFunc) ([]endpointConfig, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, bad(n, "endpoints", "must be a list")
	}
	var eps []endpointConfig
	paths := map[string]bool{}
	for i, e := range n.Content {
		at := fmt.Sprintf("endpoints[%d]", i)
		var ep endpointConfig
		err := fields(e, at, bad, map[string]func(k, v *yaml.Node, key string) error{
			"path": func(_, v *yaml.Node, key string) error { return scalar(v, key, bad, &ep.Path) },
			"channels": func(_, v *yaml.Node, key string) error {
				if v.Kind != yaml.SequenceNode {
					return bad(v, key, "must be a list")
				}
				for j, c := range v.Content {
					cat := fmt.Sprintf("%s[%d]", key, j)
					ch := channelConfig{line: c.Line, Events: map[string]string{}, eventLines: map[string]int{}}
					err := fields(c, cat, bad, map[string]func(k, v *yaml.Node, key string) error{
						"pattern": func(_, v *yaml.Node, key string) error { return scalar(v, key, bad, &ch.Pattern) },
						"presence": func(_, v *yaml.Node, key string) error {
							if v.Kind != yaml.ScalarNode || v.Decode(&ch.Presence) != nil {
								return bad(v, key, "must be true or false")
							}
							return nil
						},
						"events": func(_, v *yaml.Node, key string) error {
							if v.Kind != yaml.MappingNode {
								return bad(v, key, "must be a mapping of event name to "+eventModesText)
							}
							for x := 0; x+1 < len(v.Content); x += 2 {
								name, mode := v.Content[x], v.Content[x+1]
								ekey := key + "." + name.Value
								if name.Value == "" {
									return bad(name, key, "empty event name")
								}
								if mode.Kind != yaml.ScalarNode || !eventModes[mode.Value] {
									return bad(mode, ekey, "must be "+eventModesText)
								}
								if _, dup := ch.Events[name.Value]; dup {
									return bad(name, ekey, "listed twice")
								}
								ch.Events[name.Value] = mode.Value
								ch.eventOrder = append(ch.eventOrder, name.Value)
								ch.eventLines[name.Value] = name.Line
							}
							return nil
						},
					})
					if err != nil {
						return err
					}
					if ch.Pattern == "" || !strings.HasPrefix(ch.Pattern, "/") {
						return bad(c, cat+".pattern", "a channel pattern such as /chat/:roomId is needed")
					}
					ep.Channels = append(ep.Channels, ch)
				}
				return nil
			},
		})
		if err != nil {
			return nil, err
		}
		if ep.Path == "" || !strings.HasPrefix(ep.Path, "/") {
			return nil, bad(e, at+".path", "a path such as /api/socket is needed")
		}
		if paths[ep.Path] {
			return nil, bad(e, at+".path", "%s is configured twice", ep.Path)
		}
		paths[ep.Path] = true
		if len(ep.Channels) == 0 {
			return nil, bad(e, at+".channels", "at least one channel is needed")
		}
		eps = append(eps, ep)
	}
	return eps, nil
}

// fields walks a mapping, giving each known key to its function.
func fields(m *yaml.Node, at string, bad badFunc, known map[string]func(k, v *yaml.Node, key string) error) error {
	if m.Kind != yaml.MappingNode {
		return bad(m, at, "must be a mapping")
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		fn, ok := known[k.Value]
		if !ok {
			return bad(k, at+"."+k.Value, "unknown key")
		}
		if err := fn(k, v, at+"."+k.Value); err != nil {
			return err
		}
	}
	return nil
}

func scalar(v *yaml.Node, key string, bad badFunc, into *string) error {
	if v.Kind != yaml.ScalarNode {
		return bad(v, key, "must be a plain value")
	}
	*into = v.Value
	return nil
}
