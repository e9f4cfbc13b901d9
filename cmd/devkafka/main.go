// Command devkafka runs a single-process Kafka-protocol broker (franz-go's
// kfake) on 127.0.0.1 for development and tests: enough for pondsocket
// nodes to form a cluster on one machine without installing Apache Kafka.
// It is not a production broker; point --kafka-brokers at a real cluster
// for that.
//
//	go run ./cmd/devkafka --port 9092 --data /tmp/devkafka
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	port := flag.Int("port", 9092, "port to listen on (127.0.0.1)")
	data := flag.String("data", "", "directory to keep topics and offsets across restarts (empty = memory only)")
	sasl := flag.String("sasl", "", "require SASL with these users: comma-separated MECHANISM:user:password, MECHANISM one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 (empty = no SASL)")
	flag.Parse()
	opts := []kfake.Opt{kfake.Ports(*port)} // kfake listens on 127.0.0.1
	if *sasl != "" {
		opts = append(opts, kfake.EnableSASL())
		for _, u := range strings.Split(*sasl, ",") {
			parts := strings.SplitN(strings.TrimSpace(u), ":", 3)
			if len(parts) != 3 {
				fmt.Fprintf(os.Stderr, "devkafka: --sasl %q: want MECHANISM:user:password\n", u)
				os.Exit(2)
			}
			opts = append(opts, kfake.Superuser(parts[0], parts[1], parts[2]))
		}
	}
	if *data != "" {
		opts = append(opts, kfake.DataDir(*data))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "devkafka: %v\n", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "kafka broker listening on %s\n", c.ListenAddrs()[0])
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	c.Close()
}
