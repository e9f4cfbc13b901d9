package protocol

// AppendMessageHead appends a server message up to and including
// `"payload":`; the caller appends the payload object and the closing '}'.
// It lets a payload be assembled in place (for example a presence list
// concatenated from pre-encoded entries) without an intermediate copy.
func AppendMessageHead(dst []byte, action, event, channelName, requestID string) []byte {
	return appendHeader(dst, action, event, channelName, requestID)
}
