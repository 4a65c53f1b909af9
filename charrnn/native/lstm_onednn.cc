// One LSTM layer over a whole sequence, trained by oneDNN's fused LSTM primitive, in bfloat16 or
// float32 (the op's attribute T: the type of the layer's input and hidden states).
//
// CharrnnLstmForward runs `lstm_forward` (prop_kind forward_training) and returns the hidden
// states with the primitive's workspace; CharrnnLstmBackward runs `lstm_backward` from that
// workspace. CharrnnLstmInference runs `lstm_forward` with prop_kind forward_inference: the hidden
// states only, no workspace (about 20 KB per position of a 384-unit layer, which a long
// validation window cannot afford). Sources, hidden states and weights are of type T; the bias, the
// cell state and the gradients float32 (oneDNN 3.2 refuses other mixes for bf16). Initial states are
// zero. Whether oneDNN can build a primitive depends on the CPU (3.2's bf16 LSTM needs AVX-512
// with bf16 support; float32 runs on AVX2): charrnn.native probes each (type, shape) once before
// using the op, so a refusal here becomes a fallback, not a failed training step.
//
// Weights arrive as Keras LSTMCell float32 weights: kernel (in, 4U), recurrent kernel (U, 4U) and
// bias (4U,), gates i, f, c, o along the last axis. That is oneDNN's ldigo (weights) and ldgo
// (bias) layout with one layer and one direction, and oneDNN's vanilla_lstm gate order is also
// i, f, c~, o, so the tensors are handed over as they are; reorders convert them to bfloat16 in
// whatever layout the primitive prefers.
//
// The attribute `threads` (0: oneDNN's default, every OpenMP thread) sets how many OpenMP threads
// one call of the op may use, for the primitive's creation and its run; the calling thread's
// setting is restored afterwards. A stack that splits its batch into parts run side by side gives
// each part its share of the cores that way (see charrnn/models/fused_lstm.py).
//
// Primitives and reorders are created once per shape (time, batch, in, units) and cached in the
// kernel (one kernel object per graph node); a mutex serialises calls of one kernel.

#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <unordered_map>

#include <omp.h>

#include "oneapi/dnnl/dnnl.hpp"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"

using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;
using tensorflow::Tensor;
using tensorflow::TensorShape;
using tensorflow::shape_inference::InferenceContext;

using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

// Output 0 of both forward ops: the hidden states, (time, batch, units).
static void set_hiddens_shape(InferenceContext* context) {
  auto inputs = context->input(0);
  auto recurrent = context->input(2);
  context->set_output(0, context->MakeShape({context->Dim(inputs, 0), context->Dim(inputs, 1),
                                             context->Dim(recurrent, 0)}));
}

REGISTER_OP("CharrnnLstmForward")
    .Attr("T: {bfloat16, float}")
    .Attr("threads: int = 0")
    .Input("inputs: T")            // (time, batch, in)
    .Input("kernel: float")        // (in, 4 * units)
    .Input("recurrent: float")     // (units, 4 * units)
    .Input("bias: float")          // (4 * units)
    .Output("hiddens: T")          // (time, batch, units)
    .Output("workspace: uint8")    // oneDNN's saved gates and states, for the backward op
    .SetShapeFn([](InferenceContext* context) {
      set_hiddens_shape(context);
      context->set_output(1, context->Vector(InferenceContext::kUnknownDim));
      return tensorflow::OkStatus();
    });

REGISTER_OP("CharrnnLstmInference")
    .Attr("T: {bfloat16, float}")
    .Attr("threads: int = 0")
    .Input("inputs: T")            // (time, batch, in)
    .Input("kernel: float")        // (in, 4 * units)
    .Input("recurrent: float")     // (units, 4 * units)
    .Input("bias: float")          // (4 * units)
    .Output("hiddens: T")          // (time, batch, units)
    .SetShapeFn([](InferenceContext* context) {
      set_hiddens_shape(context);
      return tensorflow::OkStatus();
    });

REGISTER_OP("CharrnnLstmBackward")
    .Attr("T: {bfloat16, float}")
    .Attr("threads: int = 0")
    .Input("inputs: T")
    .Input("kernel: float")
    .Input("recurrent: float")
    .Input("bias: float")
    .Input("hiddens: T")
    .Input("workspace: uint8")
    .Input("d_hiddens: float")
    .Output("d_inputs: float")
    .Output("d_kernel: float")
    .Output("d_recurrent: float")
    .Output("d_bias: float")
    .SetShapeFn([](InferenceContext* context) {
      for (int index = 0; index < 4; ++index) context->set_output(index, context->input(index));
      return tensorflow::OkStatus();
    });

namespace {

struct Shape {
  int64_t time, batch, width, units;
  bool operator<(const Shape& other) const {
    return std::tie(time, batch, width, units) < std::tie(other.time, other.batch, other.width, other.units);
  }
};

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::memory::desc plain(dnnl::memory::dims dims, dt type, tag format) {
  return dnnl::memory::desc(dims, type, format);
}

// The memory descriptors both primitives share. In float32 the zero initial states are handed
// over explicitly (src_iter, src_iter_c): with them left out, oneDNN 3.2's float32 backward on an
// AVX2 CPU computed the recurrent kernel's gradient from h_t instead of h_(t-1) (measured against
// Keras; its forward pass and the other gradients were right). bfloat16 keeps the implicit zeros.
struct Descs {
  dnnl::memory::desc src, weights_layer_user, weights_iter_user, bias, dst, none;
  dnnl::memory::desc weights_layer_any, weights_iter_any;
  dnnl::memory::desc state, carry;  // the initial states: empty (implicit zeros) or (1, 1, batch, units)
  dt type;  // of the input, the hidden states and the primitive's weights
  Descs(const Shape& s, dt type) : type(type) {
    if (type == dt::f32) {
      state = plain({1, 1, s.batch, s.units}, dt::f32, tag::ldnc);
      carry = plain({1, 1, s.batch, s.units}, dt::f32, tag::ldnc);
    }
    src = plain({s.time, s.batch, s.width}, type, tag::tnc);
    dst = plain({s.time, s.batch, s.units}, type, tag::tnc);
    weights_layer_user = plain({1, 1, s.width, 4, s.units}, dt::f32, tag::ldigo);
    weights_iter_user = plain({1, 1, s.units, 4, s.units}, dt::f32, tag::ldigo);
    weights_layer_any = plain({1, 1, s.width, 4, s.units}, type, tag::any);
    weights_iter_any = plain({1, 1, s.units, 4, s.units}, type, tag::any);
    bias = plain({1, 1, 4, s.units}, dt::f32, tag::ldgo);
  }
};

// The primitives' scratch memory comes from TensorFlow's allocator, one buffer per call
// (oneDNN's own scratchpad is shared by the primitives a thread runs).
dnnl::primitive_attr user_scratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

dnnl::lstm_forward::primitive_desc forward_desc(const Descs& d,
                                                dnnl::prop_kind kind = dnnl::prop_kind::forward_training) {
  return dnnl::lstm_forward::primitive_desc(
      cpu_engine(), kind, dnnl::rnn_direction::unidirectional_left2right, d.src,
      d.state, d.carry, d.weights_layer_any, d.weights_iter_any, d.bias, d.dst, d.none, d.none, user_scratchpad());
}

// A scratch buffer of the primitive's size, as a TensorFlow temporary.
bool scratchpad(OpKernelContext* context, const dnnl::memory::desc& desc, Tensor* buffer, dnnl::memory* memory) {
  const int64_t bytes = static_cast<int64_t>(desc.get_size());
  auto status = context->allocate_temp(tensorflow::DT_UINT8, TensorShape({bytes > 0 ? bytes : 1}), buffer);
  if (!status.ok()) {
    context->SetStatus(status);
    return false;
  }
  *memory = dnnl::memory(desc, cpu_engine(), const_cast<char*>(buffer->tensor_data().data()));
  return true;
}

// Float32 Keras weights -> the primitive's type and layout (one reorder each, cached).
struct WeightPack {
  dnnl::memory user_layer, user_iter, layer, iter;
  dnnl::reorder to_layer, to_iter;
  WeightPack(const Descs& d, const dnnl::memory::desc& layer_desc, const dnnl::memory::desc& iter_desc) {
    auto& engine = cpu_engine();
    user_layer = dnnl::memory(d.weights_layer_user, engine, DNNL_MEMORY_NONE);
    user_iter = dnnl::memory(d.weights_iter_user, engine, DNNL_MEMORY_NONE);
    layer = dnnl::memory(layer_desc, engine);
    iter = dnnl::memory(iter_desc, engine);
    to_layer = dnnl::reorder(user_layer, layer);
    to_iter = dnnl::reorder(user_iter, iter);
  }
  void pack(dnnl::stream& stream, const Tensor& kernel, const Tensor& recurrent) {
    user_layer.set_data_handle(const_cast<float*>(kernel.flat<float>().data()));
    user_iter.set_data_handle(const_cast<float*>(recurrent.flat<float>().data()));
    to_layer.execute(stream, user_layer, layer);
    to_iter.execute(stream, user_iter, iter);
  }
};

void* data(const Tensor& tensor) { return const_cast<char*>(tensor.tensor_data().data()); }

// Runs `body`, turning a oneDNN error into the op's error status.
template <typename Body>
void reporting_dnnl_errors(OpKernelContext* context, Body body) {
  try {
    body();
  } catch (const dnnl::error& error) {
    context->SetStatus(tensorflow::errors::Internal("oneDNN: ", error.what(), " (status ",
                                                    static_cast<int>(error.status), ")"));
  }
}

void read_shape(OpKernelContext* context, Shape* shape) {
  const Tensor& inputs = context->input(0);
  const Tensor& kernel = context->input(1);
  const Tensor& recurrent = context->input(2);
  const Tensor& bias = context->input(3);
  OP_REQUIRES(context, inputs.dims() == 3, tensorflow::errors::InvalidArgument("inputs must be (time, batch, in), got ", inputs.shape().DebugString()));
  shape->time = inputs.dim_size(0);
  shape->batch = inputs.dim_size(1);
  shape->width = inputs.dim_size(2);
  OP_REQUIRES(context, recurrent.dims() == 2 && recurrent.dim_size(1) == 4 * recurrent.dim_size(0),
              tensorflow::errors::InvalidArgument("recurrent kernel must be (units, 4 * units), got ", recurrent.shape().DebugString()));
  shape->units = recurrent.dim_size(0);
  OP_REQUIRES(context, kernel.dims() == 2 && kernel.dim_size(0) == shape->width && kernel.dim_size(1) == 4 * shape->units,
              tensorflow::errors::InvalidArgument("kernel must be (in, 4 * units), got ", kernel.shape().DebugString()));
  OP_REQUIRES(context, bias.dims() == 1 && bias.dim_size(0) == 4 * shape->units,
              tensorflow::errors::InvalidArgument("bias must be (4 * units,), got ", bias.shape().DebugString()));
}

// Limits the OpenMP threads of the calling thread's parallel regions to `threads` (0: no limit)
// while it lives. OpenMP keeps this setting per thread, so the op's other calls on other
// TensorFlow threads keep theirs.
class ThreadLimit {
 public:
  explicit ThreadLimit(int threads) : saved_(omp_get_max_threads()), active_(threads > 0) {
    if (active_) omp_set_num_threads(threads);
  }
  ~ThreadLimit() {
    if (active_) omp_set_num_threads(saved_);
  }
  ThreadLimit(const ThreadLimit&) = delete;
  ThreadLimit& operator=(const ThreadLimit&) = delete;

 private:
  int saved_;
  bool active_;
};

// An op kernel with one cached plan (descriptors, primitive, buffers) per input shape, built on
// first use; Compute reads the shape, takes the lock and hands the plan to Run.
template <typename Plan>
class PlannedOp : public OpKernel {
 public:
  explicit PlannedOp(OpKernelConstruction* context) : OpKernel(context) {
    tensorflow::DataType type;
    OP_REQUIRES_OK(context, context->GetAttr("T", &type));
    type_ = type == tensorflow::DT_BFLOAT16 ? dt::bf16 : dt::f32;
    OP_REQUIRES_OK(context, context->GetAttr("threads", &threads_));
    OP_REQUIRES(context, threads_ >= 0, tensorflow::errors::InvalidArgument("threads must be >= 0"));
  }

  void Compute(OpKernelContext* context) override {
    Shape shape;
    read_shape(context, &shape);
    if (!context->status().ok()) return;
    std::lock_guard<std::mutex> lock(mutex_);
    ThreadLimit limit(threads_);
    reporting_dnnl_errors(context, [&] {
      auto& plan = plans_[shape];
      if (!plan) plan = std::make_unique<Plan>(shape, type_);
      Run(context, shape, *plan);
    });
  }

 protected:
  virtual void Run(OpKernelContext* context, const Shape& shape, Plan& plan) = 0;

 private:
  dt type_;
  int threads_ = 0;
  std::mutex mutex_;
  std::map<Shape, std::unique_ptr<Plan>> plans_;
};

// The arguments the forward and backward primitives share: the layer's input, its packed
// weights, bias, output, the workspace and the scratchpad.
// Explicit zero initial states (float32 only, see Descs), allocated and zeroed once per plan; the
// backward primitive also writes their gradients, which nothing reads.
struct InitialStates {
  dnnl::memory state, carry, d_state, d_carry;
  explicit InitialStates(const Descs& d) {
    if (d.state.is_zero()) return;
    auto& engine = cpu_engine();
    state = dnnl::memory(d.state, engine);
    carry = dnnl::memory(d.carry, engine);
    d_state = dnnl::memory(d.state, engine);
    d_carry = dnnl::memory(d.carry, engine);
    std::memset(state.get_data_handle(), 0, d.state.get_size());
    std::memset(carry.get_data_handle(), 0, d.carry.get_size());
  }
  void add_to(std::unordered_map<int, dnnl::memory>& arguments, bool backward) const {
    if (!state) return;
    arguments.insert({{DNNL_ARG_SRC_ITER, state}, {DNNL_ARG_SRC_ITER_C, carry}});
    if (backward) arguments.insert({{DNNL_ARG_DIFF_SRC_ITER, d_state}, {DNNL_ARG_DIFF_SRC_ITER_C, d_carry}});
  }
};

std::unordered_map<int, dnnl::memory> shared_arguments(const WeightPack& weights, const InitialStates& initial,
                                                       const dnnl::memory& src, const dnnl::memory& bias,
                                                       const dnnl::memory& dst, const dnnl::memory& space,
                                                       const dnnl::memory& scratch, bool backward) {
  std::unordered_map<int, dnnl::memory> arguments{
      {DNNL_ARG_SRC_LAYER, src},       {DNNL_ARG_SCRATCHPAD, scratch},
      {DNNL_ARG_WEIGHTS_LAYER, weights.layer}, {DNNL_ARG_WEIGHTS_ITER, weights.iter},
      {DNNL_ARG_BIAS, bias},           {DNNL_ARG_DST_LAYER, dst},
      {DNNL_ARG_WORKSPACE, space}};
  initial.add_to(arguments, backward);
  return arguments;
}

template <dnnl::prop_kind Kind>
struct ForwardPlan {
  Descs descs;
  dnnl::lstm_forward::primitive_desc pd;
  dnnl::lstm_forward primitive;
  WeightPack weights;
  InitialStates initial;
  ForwardPlan(const Shape& shape, dt type)
      : descs(shape, type), pd(forward_desc(descs, Kind)), primitive(pd),
        weights(descs, pd.weights_layer_desc(), pd.weights_iter_desc()), initial(descs) {}
};

// The forward pass: for training (output 1 is the workspace the backward op reads) or for
// inference (no workspace: the primitive keeps no gates or states).
template <dnnl::prop_kind Kind>
class LstmForwardOp : public PlannedOp<ForwardPlan<Kind>> {
 public:
  using PlannedOp<ForwardPlan<Kind>>::PlannedOp;

 protected:
  void Run(OpKernelContext* context, const Shape& shape, ForwardPlan<Kind>& plan) override {
    constexpr bool training = Kind == dnnl::prop_kind::forward_training;
    Tensor* hiddens = nullptr;
    Tensor* workspace = nullptr;
    OP_REQUIRES_OK(context, context->allocate_output(0, TensorShape({shape.time, shape.batch, shape.units}), &hiddens));
    if (training) {
      const int64_t workspace_bytes = static_cast<int64_t>(plan.pd.workspace_desc().get_size());
      OP_REQUIRES_OK(context, context->allocate_output(1, TensorShape({workspace_bytes}), &workspace));
    }
    auto& engine = cpu_engine();
    dnnl::stream stream(engine);
    plan.weights.pack(stream, context->input(1), context->input(2));
    dnnl::memory src(plan.descs.src, engine, data(context->input(0)));
    dnnl::memory bias(plan.descs.bias, engine, data(context->input(3)));
    dnnl::memory dst(plan.descs.dst, engine, data(*hiddens));
    dnnl::memory space = training ? dnnl::memory(plan.pd.workspace_desc(), engine, data(*workspace)) : dnnl::memory();
    Tensor scratch_buffer;
    dnnl::memory scratch;
    if (!scratchpad(context, plan.pd.scratchpad_desc(), &scratch_buffer, &scratch)) return;
    auto arguments = shared_arguments(plan.weights, plan.initial, src, bias, dst, space, scratch, false);
    if (!training) arguments.erase(DNNL_ARG_WORKSPACE);
    plan.primitive.execute(stream, arguments);
    stream.wait();
  }
};

struct BackwardPlan {
  Descs descs;
  dnnl::lstm_forward::primitive_desc hint;
  dnnl::lstm_backward::primitive_desc pd;
  dnnl::lstm_backward primitive;
  WeightPack weights;
  InitialStates initial;
  dnnl::memory d_layer, d_iter;               // the primitive's float32 weight gradients
  dnnl::memory d_layer_user, d_iter_user;     // Keras layout, the op's outputs
  dnnl::reorder from_layer, from_iter;
  dnnl::memory::desc d_src, d_dst, d_bias;

  static dnnl::lstm_backward::primitive_desc make(const Shape& s, const Descs& d,
                                                  const dnnl::lstm_forward::primitive_desc& hint) {
    // float32 gradients for either type (oneDNN 3.2's bfloat16 backward refuses any other mix)
    auto d_src = plain({s.time, s.batch, s.width}, dt::f32, tag::tnc);
    auto d_dst = plain({s.time, s.batch, s.units}, dt::f32, tag::tnc);
    auto d_layer = plain({1, 1, s.width, 4, s.units}, dt::f32, tag::any);
    auto d_iter = plain({1, 1, s.units, 4, s.units}, dt::f32, tag::any);
    auto d_bias = plain({1, 1, 4, s.units}, dt::f32, tag::ldgo);
    auto weights_layer = plain({1, 1, s.width, 4, s.units}, d.type, tag::any);
    auto weights_iter = plain({1, 1, s.units, 4, s.units}, d.type, tag::any);
    return dnnl::lstm_backward::primitive_desc(
        cpu_engine(), dnnl::prop_kind::backward, dnnl::rnn_direction::unidirectional_left2right, d.src, d.state,
        d.carry, weights_layer, weights_iter, d.bias, d.dst, d.none, d.none, d_src, d.state, d.carry, d_layer,
        d_iter, d_bias, d_dst, d.none, d.none, hint, user_scratchpad());
  }

  BackwardPlan(const Shape& s, dt type)
      : descs(s, type), hint(forward_desc(descs)), pd(make(s, descs, hint)), primitive(pd),
        weights(descs, pd.weights_layer_desc(), pd.weights_iter_desc()), initial(descs) {
    auto& engine = cpu_engine();
    d_layer = dnnl::memory(pd.diff_weights_layer_desc(), engine);
    d_iter = dnnl::memory(pd.diff_weights_iter_desc(), engine);
    d_layer_user = dnnl::memory(descs.weights_layer_user, engine, DNNL_MEMORY_NONE);
    d_iter_user = dnnl::memory(descs.weights_iter_user, engine, DNNL_MEMORY_NONE);
    from_layer = dnnl::reorder(d_layer, d_layer_user);
    from_iter = dnnl::reorder(d_iter, d_iter_user);
    d_src = pd.diff_src_layer_desc();
    d_dst = pd.diff_dst_layer_desc();
    d_bias = pd.diff_bias_desc();
  }
};

class LstmBackwardOp : public PlannedOp<BackwardPlan> {
 public:
  using PlannedOp::PlannedOp;

 protected:
  void Run(OpKernelContext* context, const Shape& shape, BackwardPlan& plan) override {
    const Tensor& workspace = context->input(5);
    OP_REQUIRES(context, static_cast<size_t>(workspace.NumElements()) == plan.pd.workspace_desc().get_size(),
                tensorflow::errors::InvalidArgument("workspace of ", workspace.NumElements(), " bytes, expected ",
                                                    plan.pd.workspace_desc().get_size()));
    Tensor *d_inputs = nullptr, *d_kernel = nullptr, *d_recurrent = nullptr, *d_bias = nullptr;
    OP_REQUIRES_OK(context, context->allocate_output(0, context->input(0).shape(), &d_inputs));  // float32
    OP_REQUIRES_OK(context, context->allocate_output(1, context->input(1).shape(), &d_kernel));
    OP_REQUIRES_OK(context, context->allocate_output(2, context->input(2).shape(), &d_recurrent));
    OP_REQUIRES_OK(context, context->allocate_output(3, context->input(3).shape(), &d_bias));
    auto& engine = cpu_engine();
    dnnl::stream stream(engine);
    plan.weights.pack(stream, context->input(1), context->input(2));
    // oneDNN accumulates into the weight and bias gradients: start them at zero
    std::memset(plan.d_layer.get_data_handle(), 0, plan.pd.diff_weights_layer_desc().get_size());
    std::memset(plan.d_iter.get_data_handle(), 0, plan.pd.diff_weights_iter_desc().get_size());
    std::memset(data(*d_bias), 0, d_bias->TotalBytes());
    dnnl::memory src(plan.descs.src, engine, data(context->input(0)));
    dnnl::memory bias(plan.descs.bias, engine, data(context->input(3)));
    dnnl::memory dst(plan.descs.dst, engine, data(context->input(4)));
    dnnl::memory space(plan.pd.workspace_desc(), engine, data(workspace));
    dnnl::memory d_dst(plan.d_dst, engine, data(context->input(6)));
    dnnl::memory d_src(plan.d_src, engine, data(*d_inputs));
    dnnl::memory d_bias_memory(plan.d_bias, engine, data(*d_bias));
    Tensor scratch_buffer;
    dnnl::memory scratch;
    if (!scratchpad(context, plan.pd.scratchpad_desc(), &scratch_buffer, &scratch)) return;
    auto arguments = shared_arguments(plan.weights, plan.initial, src, bias, dst, space, scratch, true);
    arguments.insert({{DNNL_ARG_DIFF_DST_LAYER, d_dst},
                      {DNNL_ARG_DIFF_SRC_LAYER, d_src},
                      {DNNL_ARG_DIFF_WEIGHTS_LAYER, plan.d_layer},
                      {DNNL_ARG_DIFF_WEIGHTS_ITER, plan.d_iter},
                      {DNNL_ARG_DIFF_BIAS, d_bias_memory}});
    plan.primitive.execute(stream, arguments);
    plan.d_layer_user.set_data_handle(data(*d_kernel));
    plan.d_iter_user.set_data_handle(data(*d_recurrent));
    plan.from_layer.execute(stream, plan.d_layer, plan.d_layer_user);
    plan.from_iter.execute(stream, plan.d_iter, plan.d_iter_user);
    stream.wait();
  }
};

}  // namespace

// One kernel class serves both types; the attribute T picks the primitive's data type.
#define CHARRNN_REGISTER(type)                                                                    \
  REGISTER_KERNEL_BUILDER(Name("CharrnnLstmForward").Device(tensorflow::DEVICE_CPU).TypeConstraint<type>("T"), \
                          LstmForwardOp<dnnl::prop_kind::forward_training>);                      \
  REGISTER_KERNEL_BUILDER(Name("CharrnnLstmInference").Device(tensorflow::DEVICE_CPU).TypeConstraint<type>("T"), \
                          LstmForwardOp<dnnl::prop_kind::forward_inference>);                     \
  REGISTER_KERNEL_BUILDER(Name("CharrnnLstmBackward").Device(tensorflow::DEVICE_CPU).TypeConstraint<type>("T"), \
                          LstmBackwardOp);
CHARRNN_REGISTER(tensorflow::bfloat16)
CHARRNN_REGISTER(float)
