// Package protocol holds the PondSocket client wire messages.
//
// It decodes the messages clients send (DecodeClientMessage, validated in
// exactly the order and with exactly the error texts of the reference
// server, and IsClientPing for the npm client's keep-alive frame), and it
// encodes the messages the server sends once: it appends their JSON into a
// pooled, reference-counted wsframe.Frame and seals it as a text frame, so
// the same bytes go to every recipient (Encode, EncodeValue, AppendMessage,
// ErrorPayload, HandlerErrorPayload). WebSocket framing itself (opcodes,
// headers) belongs to internal/wsframe, owned by the engine.
//
// Every server message is one line of compact JSON with the five envelope
// fields action, event, channelName, requestId and payload, where payload is
// always a JSON object. Strings are escaped so that a message never contains
// a raw newline, U+2028/U+2029 or invalid UTF-8, which lets several messages
// share one text frame separated by "\n".
//
// The package knows nothing of sockets, channels or handlers; see
// docs/protocol.md §2–§5 for the wire contract it implements.
package protocol
