// A build started from Go with the Temporal SDK alone (docs/client.md).
//
// Usage: go run . INPUT.json   (INPUT.json from `causeway compile`)
// Env: TEMPORAL_ADDRESS (default localhost:7233), CAUSEWAY_TASK_QUEUE (default causeway),
// CAUSEWAY_CODEC_ENDPOINT and CAUSEWAY_CODEC_TOKEN: the codec server that en/decrypts payloads
// (docs/security.md).
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
)

func env(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func run() (int, error) {
	if len(os.Args) != 2 {
		return 2, errors.New("usage: start-build INPUT.json")
	}
	text, err := os.ReadFile(os.Args[1])
	if err != nil {
		return 2, err
	}
	// The input goes as the JSON `causeway compile` printed: no Go types of the plan are needed.
	var input json.RawMessage = text
	options := client.Options{
		HostPort:  env("TEMPORAL_ADDRESS", "localhost:7233"),
		Namespace: env("TEMPORAL_NAMESPACE", "default"),
		Logger:    log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))),
	}
	if endpoint := os.Getenv("CAUSEWAY_CODEC_ENDPOINT"); endpoint != "" {
		token := os.Getenv("CAUSEWAY_CODEC_TOKEN")
		options.DataConverter = converter.NewRemoteDataConverter(converter.GetDefaultDataConverter(), converter.RemoteDataConverterOptions{
			Endpoint: endpoint,
			ModifyRequest: func(req *http.Request) error {
				req.Header.Set("Authorization", "Bearer "+token)
				return nil
			},
		})
		// A failure's message is in its encrypted attributes: without this the SDK decodes them
		// with its default converter, which cannot, and the message reads "Encoded failure".
		options.FailureConverter = temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{DataConverter: options.DataConverter})
	}
	c, err := client.Dial(options)
	if err != nil {
		return 2, err
	}
	defer c.Close()

	id := make([]byte, 16)
	_, _ = rand.Read(id)
	handle, err := c.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{
		ID:        fmt.Sprintf("build-%x", id),
		TaskQueue: env("CAUSEWAY_TASK_QUEUE", "causeway"),
	}, "build", input)
	if err != nil {
		return 2, err
	}
	fmt.Printf("started %s\n", handle.GetID())

	var summary struct {
		Status string `json:"status"`
	}
	err = handle.Get(context.Background(), &summary)
	// A failed build fails with type BuildFailed, an errored one with BuildErrored.
	var failure *temporal.ApplicationError
	if errors.As(err, &failure) {
		fmt.Printf("%s: %s\n", failure.Type(), failure.Message())
		if failure.Type() == "BuildFailed" {
			return 1, nil
		}
		return 2, nil
	}
	if err != nil && strings.Contains(err.Error(), "binary/encrypted") {
		return 2, fmt.Errorf("%w\nthe workers encrypt what they write: set CAUSEWAY_CODEC_ENDPOINT and CAUSEWAY_CODEC_TOKEN (docs/client.md)", err)
	}
	if err != nil {
		return 2, err
	}
	fmt.Printf("succeeded: %s\n", summary.Status)
	return 0, nil
}

func main() {
	code, err := run()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}
