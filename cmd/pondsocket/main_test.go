package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The server binary: starts with no flags but an address, serves /healthz
// and /metrics next to the WebSocket endpoint, runs the demo chat, and
// drains on SIGTERM (clients get close 1001, the process exits 0).
func TestServerBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "pondsocket")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "--addr", "127.0.0.1:0", "--log-level", "warn")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(stderr)
	addr := ""
	for sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
			addr = a
			break
		}
	}
	if addr == "" {
		t.Fatal("no 'listening on' line")
	}
	go io.Copy(io.Discard, stderr)

	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "ok" {
		t.Fatalf("healthz %d %q", resp.StatusCode, b)
	}

	c, _, err := websocket.DefaultDialer.Dial(fmt.Sprintf("ws://%s/api/socket?username=ann", addr), nil)
	if err != nil {
		t.Fatal(err)
	}
	read := func() string {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, m, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		return string(m)
	}
	if m := read(); !strings.Contains(m, `"action":"CONNECT"`) {
		t.Fatalf("first frame %s", m)
	}
	c.WriteMessage(websocket.TextMessage, []byte(`{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"/chat/demo","requestId":"j","payload":{}}`))
	if m := read(); !strings.Contains(m, `"event":"ACKNOWLEDGE"`) {
		t.Fatalf("join %s", m)
	}
	if m := read(); !strings.Contains(m, `"presence":[{"status":"online","username":"ann"}]`) {
		t.Fatalf("presence %s", m)
	}
	c.WriteMessage(websocket.TextMessage, []byte(`{"action":"BROADCAST","event":"echo","channelName":"/chat/demo","requestId":"e","payload":{"n":1}}`))
	if m := read(); !strings.Contains(m, `"event":"echo"`) || !strings.Contains(m, `"payload":{"n":1}`) {
		t.Fatalf("echo %s", m)
	}

	resp, err = http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"pondsocket_connections 1", "pondsocket_channels 1", "pondsocket_joins_total 1"} {
		if !strings.Contains(string(b), want) {
			t.Fatalf("metrics lack %q:\n%s", want, b)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err = c.ReadMessage()
	if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != 1001 {
		t.Fatalf("on SIGTERM: %v, want close 1001", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("server did not exit after SIGTERM")
	}
	_ = os.Stderr
}
