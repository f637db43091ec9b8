#include "daemon/app/embeddings_api.h"

#include <spdlog/spdlog.h>

#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "daemon/app/response_spec.h"
#include "daemon/protocol/json_intake.h"
#include "engine/model/hidden_states.h"
#include "kernels/cpu/parallel.h"

namespace mnemo::daemon::app {

using json = protocol::Json;

namespace {

// A refusal with OpenAI's error object naming the parameter.
struct Refusal {
  int status;
  std::string message, param, code;
};

net::HttpResponse error(const Refusal& r) {
  net::HttpResponse out;
  out.status = r.status;
  out.body = json({{"error",
                    {{"message", r.message},
                     {"type", r.status >= 500 ? "server_error" : "invalid_request_error"},
                     {"param", r.param.empty() ? json(nullptr) : json(r.param)},
                     {"code", r.code.empty() ? json(nullptr) : json(r.code)}}}})
                 .dump(-1, ' ', false, json::error_handler_t::replace);
  return out;
}

const json* field(const json& obj, const char* name) {
  auto it = obj.find(name);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

std::string base64(std::span<const float> v) {
  static_assert(std::endian::native == std::endian::little, "base64 embeddings are little-endian float32");
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto* p = reinterpret_cast<const unsigned char*>(v.data());
  const size_t n = v.size() * sizeof(float);
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  for (size_t i = 0; i < n; i += 3) {
    const uint32_t b = uint32_t(p[i]) << 16 | (i + 1 < n ? uint32_t(p[i + 1]) << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
    out += kAlphabet[b >> 18 & 63];
    out += kAlphabet[b >> 12 & 63];
    out += i + 1 < n ? kAlphabet[b >> 6 & 63] : '=';
    out += i + 2 < n ? kAlphabet[b & 63] : '=';
  }
  return out;
}

// Shortest text that reads back as the same float32 (to_chars' guarantee):
// about half the bytes of printing the value as a double.
void append_floats(std::string& out, std::span<const float> v) {
  out += '[';
  char buf[32];
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += ',';
    const auto r = std::to_chars(buf, buf + sizeof buf, v[i]);
    out.append(buf, r.ptr);
  }
  out += ']';
}

void normalise(std::vector<float>& v) {
  double ss = 0;
  for (float x : v) ss += double(x) * x;
  if (!(ss > 0) || !std::isfinite(ss)) return;  // an all-zero state stays zero rather than NaN
  const double inv = 1.0 / std::sqrt(ss);
  for (float& x : v) x = float(x * inv);
}

}  // namespace

struct EmbeddingsApi::Request {
  std::string model;
  std::vector<std::vector<int32_t>> inputs;
  int64_t total_tokens = 0;
  bool base64 = false;
};

EmbeddingsApi::EmbeddingsApi(std::string model_name, const engine::Model& model, const engine::Tokenizer& tok,
                             WorkerPool& pool, AppMetrics& metrics, EmbeddingsOptions options)
    : model_name_(std::move(model_name)), model_(model), tok_(tok), pool_(pool), metrics_(metrics), opt_(options),
      queue_(std::make_shared<SerialQueue>(pool)) {
  const int64_t layers = model.config().num_layers;
  if (opt_.layer < 0 || opt_.layer > layers)
    throw std::invalid_argument("--embedding-layer " + std::to_string(opt_.layer) + " is outside 1.." +
                                std::to_string(layers) + " (the model's layers; 0 for the middle one)");
  // The middle: late layers specialise in predicting the next token, middle
  // ones carry more of what the text is about (and cost half the compute).
  layer_ = opt_.layer > 0 ? opt_.layer : (layers + 1) / 2;
  opt_.max_input_tokens = std::min(opt_.max_input_tokens, model.config().max_position_embeddings);
  spdlog::info("POST /v1/embeddings: mean hidden state after layer {} of {}, {} floats, unit length", layer_, layers,
               model.config().hidden_size);
}

void EmbeddingsApi::handle(const net::HttpRequest& req, std::shared_ptr<net::HttpExchange> ex) {
  if (req.method != "POST") return ex->respond(error({405, "use POST for /v1/embeddings", "", "method_not_allowed"}));
  // Parsing and tokenizing may take a while: off the network thread.
  pool_.post([this, req, ex] { parse_and_queue(req, ex); });
}

void EmbeddingsApi::parse_and_queue(const net::HttpRequest& req, std::shared_ptr<net::HttpExchange> ex) {
  auto refuse = [&](const Refusal& r) {
    metrics_.errors.inc();
    if (!ex->closed()) ex->respond(error(r));
  };
  auto r = std::make_shared<Request>();
  try {
    protocol::IntakeLimits limits;
    limits.max_bytes = req.body.size();
    const json body = protocol::parse_client_json(req.body, limits);
    if (!body.is_object()) throw BadRequest("the request body must be a JSON object");
    if (const json* m = field(body, "model")) {
      if (!m->is_string()) throw BadRequest("'model' must be a string", "model");
      r->model = m->get<std::string>();
    }
    if (const json* u = field(body, "user"); u && !u->is_string()) throw BadRequest("'user' must be a string", "user");
    if (const json* f = field(body, "encoding_format")) {
      if (!f->is_string() || (*f != "float" && *f != "base64"))
        throw BadRequest("'encoding_format' must be 'float' or 'base64'", "encoding_format");
      r->base64 = *f == "base64";
    }
    const int64_t H = model_.config().hidden_size;
    if (const json* d = field(body, "dimensions");
        d && !(d->is_number_integer() && d->get<int64_t>() == H))
      throw BadRequest("'dimensions' must be " + std::to_string(H) +
                           ", this model's embedding size (shortened embeddings are not supported)",
                       "dimensions");

    const json* in = field(body, "input");
    if (!in) throw BadRequest("'input' is required", "input");
    const int64_t V = model_.config().vocab_size;
    auto token_ids = [&](const json& a, const std::string& where) {
      if (a.empty()) throw BadRequest("'" + where + "' must not be an empty array", "input");
      std::vector<int32_t> ids;
      ids.reserve(a.size());
      for (const json& t : a) {
        if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= V)
          throw BadRequest("'" + where + "' must hold token ids from 0 to " + std::to_string(V - 1), "input");
        ids.push_back(int32_t(t.get<int64_t>()));
      }
      return ids;
    };
    auto text = [&](const json& s, const std::string& where) {
      const std::string& t = s.get_ref<const std::string&>();
      if (t.empty()) throw BadRequest("'" + where + "' must not be an empty string", "input");
      // No BOS, and special-token text stays text: a client cannot inject control tokens.
      auto ids = tok_.encode(t, false, false);
      if (ids.empty()) throw BadRequest("'" + where + "' encodes to no tokens", "input");
      return ids;
    };
    if (in->is_string()) {
      r->inputs.push_back(text(*in, "input"));
    } else if (in->is_array() && !in->empty()) {
      if (int64_t(in->size()) > opt_.max_inputs)
        throw BadRequest("'input' holds " + std::to_string(in->size()) + " inputs; at most " +
                             std::to_string(opt_.max_inputs) + " per request",
                         "input");
      if (in->front().is_number()) {
        r->inputs.push_back(token_ids(*in, "input"));
      } else {
        for (size_t i = 0; i < in->size(); ++i) {
          const json& e = (*in)[i];
          const std::string where = "input[" + std::to_string(i) + "]";
          if (e.is_string() && in->front().is_string()) r->inputs.push_back(text(e, where));
          else if (e.is_array() && in->front().is_array()) r->inputs.push_back(token_ids(e, where));
          else
            throw BadRequest("'input' must be a string, an array of strings, an array of token ids or an array of "
                             "arrays of token ids (not a mix)",
                             "input");
        }
      }
    } else {
      throw BadRequest("'input' must be a non-empty string or a non-empty array", "input");
    }
    for (size_t i = 0; i < r->inputs.size(); ++i) {
      const int64_t n = int64_t(r->inputs[i].size());
      if (n > opt_.max_input_tokens)
        throw BadRequest("input " + std::to_string(i) + " has " + std::to_string(n) + " tokens; at most " +
                             std::to_string(opt_.max_input_tokens) + " per input",
                         "input");
      r->total_tokens += n;
    }
    if (r->total_tokens > opt_.max_total_tokens)
      return refuse({413, "the inputs hold " + std::to_string(r->total_tokens) + " tokens; at most " +
                              std::to_string(opt_.max_total_tokens) + " per request: split them over several requests",
                     "input", "request_too_large"});
  } catch (const protocol::IntakeError& e) {
    return refuse({400, e.what(), "", "invalid_json"});
  } catch (const BadRequest& e) {
    return refuse({400, e.what(), e.field(), ""});
  } catch (const std::exception& e) {
    spdlog::error("POST /v1/embeddings failed: {}", e.what());
    return refuse({500, "internal error", "", "internal"});
  }
  if (queued_.fetch_add(1) >= opt_.max_queued) {
    queued_.fetch_sub(1);
    return refuse({429, "too many embedding requests are waiting; try again later", "", "rate_limit_exceeded"});
  }
  queue_->post([this, r, ex] {
    compute(*r, ex);
    queued_.fetch_sub(1);
  });
}

void EmbeddingsApi::compute(const Request& r, const std::shared_ptr<net::HttpExchange>& ex) {
  try {
    // The kernels' thread count is per thread: a pool worker would otherwise use every core.
    kernels::cpu::set_num_threads(opt_.threads);
    std::string data;
    for (size_t i = 0; i < r.inputs.size(); ++i) {
      if (ex->closed()) return;  // the client left: spend nothing more on it
      std::vector<float> e = engine::mean_hidden_state(model_, r.inputs[i], layer_);
      normalise(e);
      if (i) data += ',';
      data += R"({"object":"embedding","index":)" + std::to_string(i) + R"(,"embedding":)";
      if (r.base64) data += '"' + base64(e) + '"';
      else append_floats(data, e);
      data += '}';
    }
    net::HttpResponse out;
    out.status = 200;
    out.body = R"({"object":"list","data":[)" + data + R"(],"model":)" +
               json(r.model.empty() ? model_name_ : r.model).dump(-1, ' ', false, json::error_handler_t::replace) +
               R"(,"usage":{"prompt_tokens":)" + std::to_string(r.total_tokens) +
               R"(,"total_tokens":)" + std::to_string(r.total_tokens) + "}}";
    if (!ex->closed()) ex->respond(std::move(out));
  } catch (const std::exception& e) {
    metrics_.errors.inc();
    spdlog::error("POST /v1/embeddings failed: {}", e.what());
    if (!ex->closed()) ex->respond(error({500, "internal error", "", "internal"}));
  }
}

}  // namespace mnemo::daemon::app
