#include "metrics/stream_metrics.hpp"

namespace gophermq::metrics {

StreamMetrics::StreamMetrics(prometheus::Registry& registry, LimitMetrics& limits)
    : open_(&prometheus::BuildGauge()
                 .Name("gophermq_open_streams")
                 .Help("Event streams (GET /api/stream) open now.")
                 .Register(registry)
                 .Add({})),
      pushed_(&prometheus::BuildCounter()
                   .Name("gophermq_pushed_messages_total")
                   .Help("Messages written to event streams.")
                   .Register(registry)
                   .Add({})),
      slow_reader_waits_(&prometheus::BuildCounter()
                              .Name("gophermq_stream_slow_reader_waits_total")
                              .Help("Writes to a stream that waited for its client to read.")
                              .Register(registry)
                              .Add({})),
      limits_(limits) {}

}  // namespace gophermq::metrics
