// Package kafka is the Kafka backend of cluster.PubSub, built on
// segmentio/kafka-go.
//
// # Layout on the cluster
//
// Topics are few and fixed, never one per channel (a million channels must
// not mean a million Kafka topics):
//
//	<prefix>.channels   every channel's messages; Options.Partitions (12) partitions
//	<prefix>.heartbeat  node heartbeats; 1 partition
//
// Each Kafka message's key is the PondSocket topic string (ChannelTopic or
// HeartbeatTopic of package cluster) and its value the §5 envelope bytes,
// unchanged. The partition is xxhash64(key) mod the partition count
// (Partition), so all messages of one channel go through one partition
// and keep their order.
//
// Every node needs every message of the channels it hosts, so nodes do not
// share a consumer group (which would split the messages between them):
// each node reads every partition itself, one kafka-go Reader per partition
// with no GroupID, from the end of the partition as it was when Start ran,
// and commits nothing. Subscribe and Unsubscribe only change a local filter
// on the key. A reader whose offset has vanished (the broker lost its log)
// resumes from the latest offset.
//
// The writer batches for BatchTimeout (2ms; kafka-go's default of one second
// would be the cross-node latency), waits for RequiredAcks (leader ack by
// default), and does not retry: the cluster.Node above keeps failed
// messages in its byte-bounded buffer and retries until the broker takes
// them. The Node hands the backend everything buffered at once (PublishBatch), so a burst is one produce
// request per partition. Most of a lone message's hop is BatchTimeout;
// lower it for latency, raise it for throughput.
//
// # Pointing it at a real cluster
//
//	ps, err := kafka.New(kafka.Options{
//		Brokers:      []string{"kafka-1:9093", "kafka-2:9093", "kafka-3:9093"}, // bootstrap servers
//		TopicPrefix:  "chat-prod",                                          // one prefix per deployment
//		TLS:          &tls.Config{MinVersion: tls.VersionTLS12},            // brokers' TLS listener
//		SASL:         plain.Mechanism{Username: "u", Password: "p"},        // or scram.Mechanism(scram.SHA512, "u", "p")
//		RequiredAcks: kafkago.RequireAll,                                   // if you want ISR acks
//	})
//
// With CreateTopics left on, Start creates missing topics through the
// controller with Partitions partitions, replication factor min(3,
// brokers) and retention.ms=3600000; the principal then needs CREATE on
// the cluster or the topics. Where topics are managed by operators, create
// them up front and set CreateTopics to a pointer to false; Start then
// fails naming any missing topic:
//
//	kafka-topics.sh --create --topic chat-prod.channels  --partitions 12 --replication-factor 3 --config retention.ms=3600000
//	kafka-topics.sh --create --topic chat-prod.heartbeat --partitions 1  --replication-factor 3 --config retention.ms=3600000
//
// The principal needs READ and WRITE (and DESCRIBE) on both topics; no group
// ACL is needed since no consumer group is used. Increasing the partition
// count later remaps channels to partitions: do it when no node runs, or
// accept reordering during the change. Messages larger than the broker's
// message.max.bytes (1 MB by default) fail to publish.
//
// Tests use github.com/twmb/franz-go/pkg/kfake, an in-process broker that
// speaks the Kafka wire protocol, on 127.0.0.1.
//
// Concurrency: all methods are safe for concurrent use. deliver runs on the
// partition readers' goroutines: sequential per partition (so per channel),
// concurrent across partitions.
package kafka
