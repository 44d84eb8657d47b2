// Fused visibility pass of rig's rasterizer: the C++ twin of rig/render/rasterize_ref.py.
//
// The per-pixel arithmetic is the reference's, in float64 and in the same order (built with
// -ffp-contract=off so no fused multiply-adds change the rounding), which is what makes triangle
// ids agree exactly and barycentrics / depth agree bit for bit.
//
// Work split: per image, triangles are set up in parallel, binned into bands of kBandRows rows
// (each band's list in increasing face order), then bands are rasterized in parallel; a band owns
// its pixel rows, so no two threads write the same pixel.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace {

constexpr double kDegenerateArea = 1e-12;
constexpr double kBoundsSlack = 1e-6;
constexpr int64_t kBandRows = 4;

struct Triangle {
  double x0, y0, z0, x1, y1, z1, x2, y2, z2, area, inv_area, iz0, iz1, iz2;
  int64_t j0, j1, i0, i1;
  bool valid;
};

inline double clampd(double v, double lo, double hi) { return v < lo ? lo : (v > hi ? hi : v); }

Triangle setup_triangle(const double* S, const int64_t* face, int64_t H, int64_t W, bool cull, double near) {
  Triangle t;
  const double* a = S + 3 * face[0];
  const double* b = S + 3 * face[1];
  const double* c = S + 3 * face[2];
  t.x0 = a[0]; t.y0 = a[1]; t.z0 = a[2];
  t.x1 = b[0]; t.y1 = b[1]; t.z1 = b[2];
  t.x2 = c[0]; t.y2 = c[1]; t.z2 = c[2];
  t.area = (t.x1 - t.x0) * (t.y2 - t.y0) - (t.x2 - t.x0) * (t.y1 - t.y0);
  bool finite = true;
  for (int k = 0; k < 3; ++k) finite = finite && std::isfinite(a[k]) && std::isfinite(b[k]) && std::isfinite(c[k]);
  t.valid = finite && t.z0 >= near && t.z1 >= near && t.z2 >= near && std::fabs(t.area) > kDegenerateArea;
  if (cull) t.valid = t.valid && t.area < 0;
  t.inv_area = 1.0 / t.area;
  t.iz0 = 1.0 / t.z0; t.iz1 = 1.0 / t.z1; t.iz2 = 1.0 / t.z2;
  if (!t.valid) { t.j0 = 0; t.j1 = -1; t.i0 = 0; t.i1 = -1; return t; }
  const double xmin = std::min(t.x0, std::min(t.x1, t.x2)), xmax = std::max(t.x0, std::max(t.x1, t.x2));
  const double ymin = std::min(t.y0, std::min(t.y1, t.y2)), ymax = std::max(t.y0, std::max(t.y1, t.y2));
  // Same bounds as triangle_pixel_bounds in rasterize_ref.py (pixel centres within kBoundsSlack).
  t.j0 = static_cast<int64_t>(clampd(std::ceil(xmin - 0.5 - kBoundsSlack), 0.0, double(W)));
  t.j1 = static_cast<int64_t>(clampd(std::floor(xmax - 0.5 + kBoundsSlack), -1.0, double(W - 1)));
  t.i0 = static_cast<int64_t>(clampd(std::ceil(ymin - 0.5 - kBoundsSlack), 0.0, double(H)));
  t.i1 = static_cast<int64_t>(clampd(std::floor(ymax - 0.5 + kBoundsSlack), -1.0, double(H - 1)));
  if (t.j1 < t.j0 || t.i1 < t.i0) t.valid = false;
  return t;
}

// Narrow [ja, jb] to the pixels of row centre py that can pass the inside test. Each edge
// function is linear in px; its root bounds the span. Only a pruning step: the exact test still
// decides, so a margin (kSpanSlack) absorbs the rounding of the roots, and edges that are nearly
// horizontal on screen (|slope| < kMinSlope, imprecise roots) do not prune.
constexpr double kSpanSlack = 1e-4;
constexpr double kMinSlope = 1e-3;

inline void row_span(const Triangle& t, double py, bool pos, int64_t& ja, int64_t& jb) {
  const double xs[3][2] = {{t.x1, t.x2}, {t.x2, t.x0}, {t.x0, t.x1}};
  const double ys[3][2] = {{t.y1, t.y2}, {t.y2, t.y0}, {t.y0, t.y1}};
  double lo = -std::numeric_limits<double>::infinity(), hi = std::numeric_limits<double>::infinity();
  for (int k = 0; k < 3; ++k) {
    // w(px) = (xa - px)(yb - py) - (xb - px)(ya - py) = px (ya - yb) + xa (yb - py) - xb (ya - py)
    double a = ys[k][0] - ys[k][1];
    double c = xs[k][0] * (ys[k][1] - py) - xs[k][1] * (ys[k][0] - py);
    if (!pos) { a = -a; c = -c; }  // inside means a px + c >= 0
    if (std::fabs(a) < kMinSlope) continue;
    const double root = -c / a;
    if (a > 0) lo = std::max(lo, root); else hi = std::min(hi, root);
  }
  if (lo > -std::numeric_limits<double>::infinity())
    ja = std::max(ja, static_cast<int64_t>(clampd(std::ceil(lo - 0.5 - kSpanSlack), -1.0, 1e15)));
  if (hi < std::numeric_limits<double>::infinity())
    jb = std::min(jb, static_cast<int64_t>(clampd(std::floor(hi - 0.5 + kSpanSlack), -1.0, 1e15)));
}

// T: the output float type. The depth test always runs on a float64 z-buffer (band-local scratch),
// so storing float32 outputs never changes which triangle wins.
template <typename T>
void rasterize_image(const double* S, const int64_t* faces, int64_t F, int64_t H, int64_t W, bool perspective,
                     bool cull, double near, int64_t* p2f, T* bary, T* depth_out) {
  std::vector<Triangle> tris(F);
  at::parallel_for(0, F, 2048, [&](int64_t s, int64_t e) {
    for (int64_t f = s; f < e; ++f) tris[f] = setup_triangle(S, faces + 3 * f, H, W, cull, near);
  });
  const int64_t n_bands = (H + kBandRows - 1) / kBandRows;
  std::vector<int64_t> start(n_bands + 1, 0);
  for (int64_t f = 0; f < F; ++f) {
    const Triangle& t = tris[f];
    if (!t.valid) continue;
    for (int64_t band = t.i0 / kBandRows; band <= t.i1 / kBandRows; ++band) start[band + 1]++;
  }
  for (int64_t band = 0; band < n_bands; ++band) start[band + 1] += start[band];
  std::vector<int32_t> list(start[n_bands]);
  {
    std::vector<int64_t> fill(start.begin(), start.end() - 1);
    for (int64_t f = 0; f < F; ++f) {
      const Triangle& t = tris[f];
      if (!t.valid) continue;
      for (int64_t band = t.i0 / kBandRows; band <= t.i1 / kBandRows; ++band) list[fill[band]++] = int32_t(f);
    }
  }
  // Static chunks of consecutive bands would leave one thread the whole face: hand out bands
  // round-robin through "slots" instead (slot s owns bands s, s + n_slots, ...).
  const int64_t n_slots = std::min<int64_t>(n_bands, 8 * std::max(1, at::get_num_threads()));
  at::parallel_for(0, n_slots, 1, [&](int64_t ss, int64_t se) {
    for (int64_t slot = ss; slot < se; ++slot)
    for (int64_t band = slot; band < n_bands; band += n_slots) {
      const int64_t r0 = band * kBandRows, r1 = std::min(H - 1, r0 + kBandRows - 1);
      // Each band clears its own rows (one parallel region instead of three tensor fills).
      std::fill(p2f + r0 * W, p2f + (r1 + 1) * W, int64_t(-1));
      std::fill(bary + 3 * r0 * W, bary + 3 * (r1 + 1) * W, T(0));
      std::vector<double> zbuf((r1 - r0 + 1) * W, std::numeric_limits<double>::infinity());
      double* depth = zbuf.data() - r0 * W;  // indexed by the image pixel p
      for (int64_t k = start[band]; k < start[band + 1]; ++k) {
        const int64_t f = list[k];
        const Triangle& t = tris[f];
        const bool pos = t.area > 0;
        const int64_t ia = std::max(t.i0, r0), ib = std::min(t.i1, r1);
        for (int64_t i = ia; i <= ib; ++i) {
          const double py = double(i) + 0.5;
          int64_t ja = t.j0, jb = t.j1;
          row_span(t, py, pos, ja, jb);
          for (int64_t j = ja; j <= jb; ++j) {
            const double px = double(j) + 0.5;
            // Sign tests first (w / area < 0 exactly when w and area have opposite signs), then the
            // reference's divisions, so the values that are kept are the reference's bit for bit.
            const double w0 = (t.x1 - px) * (t.y2 - py) - (t.x2 - px) * (t.y1 - py);
            if (pos ? w0 < 0 : w0 > 0) continue;
            const double w1 = (t.x2 - px) * (t.y0 - py) - (t.x0 - px) * (t.y2 - py);
            if (pos ? w1 < 0 : w1 > 0) continue;
            const double w2 = (t.x0 - px) * (t.y1 - py) - (t.x1 - px) * (t.y0 - py);
            if (pos ? w2 < 0 : w2 > 0) continue;
            const double b0 = w0 * t.inv_area, b1 = w1 * t.inv_area, b2 = w2 * t.inv_area;
            if (!(b0 >= 0 && b1 >= 0 && b2 >= 0)) continue;
            const int64_t p = i * W + j;
            // Lists are in increasing face order, so on equal depth the earlier (smaller) id stays.
            if (perspective) {
              const double q0 = b0 * t.iz0, q1 = b1 * t.iz1, q2 = b2 * t.iz2;
              const double d = 1.0 / (q0 + q1 + q2);
              if (!(d < depth[p])) continue;
              depth[p] = d;
              p2f[p] = f;
              bary[3 * p] = T(q0 * d); bary[3 * p + 1] = T(q1 * d); bary[3 * p + 2] = T(q2 * d);
            } else {
              const double d = b0 * t.z0 + b1 * t.z1 + b2 * t.z2;
              if (!(d < depth[p])) continue;
              depth[p] = d;
              p2f[p] = f;
              bary[3 * p] = T(b0); bary[3 * p + 1] = T(b1); bary[3 * p + 2] = T(b2);
            }
          }
        }
      }
      for (int64_t p = r0 * W; p < (r1 + 1) * W; ++p) depth_out[p] = T(depth[p]);
    }
  });
}

}  // namespace

std::vector<at::Tensor> rasterize_forward(at::Tensor screen, at::Tensor faces, int64_t height, int64_t width,
                                          bool perspective, bool cull_backfaces, double near) {
  TORCH_CHECK(screen.dim() == 3 && screen.size(2) == 3, "screen must be (B, V, 3)");
  TORCH_CHECK(faces.dim() == 2 && faces.size(1) == 3, "faces must be (F, 3)");
  TORCH_CHECK(height > 0 && width > 0, "image size must be positive");
  TORCH_CHECK(faces.size(0) < (int64_t(1) << 31), "too many faces");
  // Outputs in float32 for float32 input (values rounded from the float64 arithmetic), else float64.
  const auto out_type = screen.scalar_type() == at::kFloat ? at::kFloat : at::kDouble;
  screen = screen.to(at::kCPU, at::kDouble).contiguous();
  faces = faces.to(at::kCPU, at::kLong).contiguous();
  const int64_t B = screen.size(0), V = screen.size(1), F = faces.size(0);
  // Filled by rasterize_image band by band.
  auto p2f = at::empty({B, height, width}, at::kLong);
  auto bary = at::empty({B, height, width, 3}, out_type);
  auto depth = at::empty({B, height, width}, out_type);
  const int64_t* fp = faces.data_ptr<int64_t>();
  for (int64_t f = 0; f < 3 * F; ++f) TORCH_CHECK(fp[f] >= 0 && fp[f] < V, "face index out of range");
  const int64_t n_pix = height * width;
  for (int64_t b = 0; b < B; ++b) {
    if (out_type == at::kFloat)
      rasterize_image<float>(screen.data_ptr<double>() + b * V * 3, fp, F, height, width, perspective, cull_backfaces,
                             near, p2f.data_ptr<int64_t>() + b * n_pix, bary.data_ptr<float>() + b * n_pix * 3,
                             depth.data_ptr<float>() + b * n_pix);
    else
      rasterize_image<double>(screen.data_ptr<double>() + b * V * 3, fp, F, height, width, perspective, cull_backfaces,
                              near, p2f.data_ptr<int64_t>() + b * n_pix, bary.data_ptr<double>() + b * n_pix * 3,
                              depth.data_ptr<double>() + b * n_pix);
  }
  return {p2f, bary, depth};
}

// Gradient of the per-pixel barycentrics and depth (as rasterize_forward computes them for the
// given triangle ids) with respect to the screen vertices. With w_k the edge functions,
// A = w0 + w1 + w2, perspective: r_k = w_k / z_k, R = sum r_k, bary_k = r_k / R, depth = A / R;
// orthographic: bary_k = w_k / A, depth = sum bary_k z_k. Background pixels are skipped.
// Each thread accumulates into its own copy of the gradient, summed at the end.
at::Tensor rasterize_backward(at::Tensor screen, at::Tensor faces, at::Tensor pix_to_face, at::Tensor bary,
                              at::Tensor depth, at::Tensor grad_bary, at::Tensor grad_depth, bool perspective) {
  screen = screen.to(at::kCPU, at::kDouble).contiguous();
  faces = faces.to(at::kCPU, at::kLong).contiguous();
  pix_to_face = pix_to_face.contiguous();
  bary = bary.to(at::kDouble).contiguous();
  depth = depth.to(at::kDouble).contiguous();
  grad_bary = grad_bary.to(at::kDouble).contiguous();
  grad_depth = grad_depth.to(at::kDouble).contiguous();
  const int64_t B = screen.size(0), V = screen.size(1);
  const int64_t H = pix_to_face.size(1), W = pix_to_face.size(2);
  TORCH_CHECK(pix_to_face.size(0) == B, "batch mismatch");
  // Fixed chunks of rows, each with its own gradient buffer (indexed by chunk, not by thread id, so
  // it stays correct whatever threads at::parallel_for uses), summed at the end.
  const int64_t n_rows = B * H;
  const int64_t n_chunks = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), n_rows));
  const int64_t chunk_rows = (n_rows + n_chunks - 1) / n_chunks;
  std::vector<double> partial(size_t(n_chunks) * B * V * 3, 0.0);
  const double* S = screen.data_ptr<double>();
  const int64_t* fc = faces.data_ptr<int64_t>();
  const int64_t* P = pix_to_face.data_ptr<int64_t>();
  const double* BA = bary.data_ptr<double>();
  const double* D = depth.data_ptr<double>();
  const double* GB = grad_bary.data_ptr<double>();
  const double* GD = grad_depth.data_ptr<double>();
  at::parallel_for(0, n_chunks, 1, [&](int64_t c0, int64_t c1) {
   for (int64_t chunk = c0; chunk < c1; ++chunk) {
    double* acc = partial.data() + size_t(chunk) * B * V * 3;
    const int64_t r0 = chunk * chunk_rows, r1 = std::min(n_rows, r0 + chunk_rows);
    for (int64_t row = r0; row < r1; ++row) {
      const int64_t b = row / H, i = row % H;
      const double py = double(i) + 0.5;
      for (int64_t j = 0; j < W; ++j) {
        const int64_t p = row * W + j;
        const int64_t f = P[p];
        if (f < 0) continue;
        const double px = double(j) + 0.5;
        const int64_t vid[3] = {fc[3 * f], fc[3 * f + 1], fc[3 * f + 2]};
        double x[3], y[3], z[3];
        for (int k = 0; k < 3; ++k) {
          const double* v = S + (b * V + vid[k]) * 3;
          x[k] = v[0]; y[k] = v[1]; z[k] = v[2];
        }
        double w[3];
        for (int k = 0; k < 3; ++k) {
          const int a = (k + 1) % 3, c = (k + 2) % 3;
          w[k] = (x[a] - px) * (y[c] - py) - (x[c] - px) * (y[a] - py);
        }
        const double A = w[0] + w[1] + w[2];
        const double* bk = BA + 3 * p;
        const double* gb = GB + 3 * p;
        const double gd = GD[p];
        double gw[3], gz[3];
        if (perspective) {
          double r[3], R = 0.0;
          for (int k = 0; k < 3; ++k) { r[k] = w[k] / z[k]; R += r[k]; }
          const double dot = gb[0] * bk[0] + gb[1] * bk[1] + gb[2] * bk[2];
          const double d = D[p];
          const double gA = gd / R;
          for (int k = 0; k < 3; ++k) {
            const double gr = (gb[k] - dot - gd * d) / R;
            gw[k] = gr / z[k] + gA;
            gz[k] = -gr * r[k] / z[k];
          }
        } else {
          double g[3];
          for (int k = 0; k < 3; ++k) g[k] = gb[k] + gd * z[k];
          const double dot = g[0] * bk[0] + g[1] * bk[1] + g[2] * bk[2];
          for (int k = 0; k < 3; ++k) { gw[k] = (g[k] - dot) / A; gz[k] = gd * bk[k]; }
        }
        double gx[3] = {0, 0, 0}, gy[3] = {0, 0, 0};
        for (int k = 0; k < 3; ++k) {
          // w_k = (xa - px)(yc - py) - (xc - px)(ya - py) with a = k+1, c = k+2
          const int a = (k + 1) % 3, c = (k + 2) % 3;
          gx[a] += gw[k] * (y[c] - py);
          gy[a] -= gw[k] * (x[c] - px);
          gx[c] -= gw[k] * (y[a] - py);
          gy[c] += gw[k] * (x[a] - px);
        }
        for (int k = 0; k < 3; ++k) {
          double* o = acc + (b * V + vid[k]) * 3;
          o[0] += gx[k]; o[1] += gy[k]; o[2] += gz[k];
        }
      }
    }
   }
  });
  auto grad = at::zeros({B, V, 3}, at::kDouble);
  double* G = grad.data_ptr<double>();
  const int64_t n = B * V * 3;
  for (int64_t t = 0; t < n_chunks; ++t) {
    const double* src = partial.data() + size_t(t) * n;
    for (int64_t k = 0; k < n; ++k) G[k] += src[k];
  }
  return grad;
}

// ---------------------------------------------------------------------------------------------
// Fused attribute interpolation (rig.render.rasterize.interpolate): out[p] = sum_k bary[p,k] *
// attr[b, faces[f, k]] for covered pixels, 0 elsewhere; and its backward.

template <typename T>
void interpolate_forward_impl(const T* A, int64_t Ba, int64_t N, int64_t C, const int64_t* fc, const int64_t* P,
                              const T* BA, int64_t B, int64_t HW, T* out) {
  at::parallel_for(0, B * HW, 4096, [&](int64_t s, int64_t e) {
    for (int64_t p = s; p < e; ++p) {
      T* o = out + p * C;
      const int64_t f = P[p];
      if (f < 0) { for (int64_t c = 0; c < C; ++c) o[c] = T(0); continue; }
      const int64_t b = Ba == 1 ? 0 : p / HW;
      const T* a0 = A + (b * N + fc[3 * f]) * C;
      const T* a1 = A + (b * N + fc[3 * f + 1]) * C;
      const T* a2 = A + (b * N + fc[3 * f + 2]) * C;
      const T w0 = BA[3 * p], w1 = BA[3 * p + 1], w2 = BA[3 * p + 2];
      for (int64_t c = 0; c < C; ++c) o[c] = w0 * a0[c] + w1 * a1[c] + w2 * a2[c];
    }
  });
}

template <typename T>
void interpolate_backward_impl(const T* G, const T* A, int64_t Ba, int64_t N, int64_t C, const int64_t* fc,
                               const int64_t* P, const T* BA, int64_t B, int64_t HW, T* grad_attr, T* grad_bary) {
  const int64_t n_pix = B * HW;
  const int64_t n_chunks = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), n_pix));
  const int64_t chunk_pix = (n_pix + n_chunks - 1) / n_chunks;
  const int64_t n_attr = Ba * N * C;
  std::vector<T> partial(grad_attr ? size_t(n_chunks) * n_attr : 0, T(0));
  at::parallel_for(0, n_chunks, 1, [&](int64_t c0, int64_t c1) {
   for (int64_t chunk = c0; chunk < c1; ++chunk) {
    T* acc = grad_attr ? partial.data() + size_t(chunk) * n_attr : nullptr;
    const int64_t s = chunk * chunk_pix, e = std::min(n_pix, s + chunk_pix);
    for (int64_t p = s; p < e; ++p) {
      const int64_t f = P[p];
      if (f < 0) {
        if (grad_bary) { grad_bary[3 * p] = grad_bary[3 * p + 1] = grad_bary[3 * p + 2] = T(0); }
        continue;
      }
      const int64_t b = Ba == 1 ? 0 : p / HW;
      const int64_t v[3] = {fc[3 * f], fc[3 * f + 1], fc[3 * f + 2]};
      const T* g = G + p * C;
      for (int k = 0; k < 3; ++k) {
        const int64_t base = (b * N + v[k]) * C;
        if (grad_bary) {
          T dot = T(0);
          for (int64_t c = 0; c < C; ++c) dot += g[c] * A[base + c];
          grad_bary[3 * p + k] = dot;
        }
        if (acc) {
          const T w = BA[3 * p + k];
          for (int64_t c = 0; c < C; ++c) acc[base + c] += w * g[c];
        }
      }
    }
   }
  });
  if (grad_attr) {
    for (int64_t t = 0; t < n_chunks; ++t) {
      const T* src = partial.data() + size_t(t) * n_attr;
      for (int64_t k = 0; k < n_attr; ++k) grad_attr[k] += src[k];
    }
  }
}

at::Tensor interpolate_forward(at::Tensor attr, at::Tensor faces, at::Tensor pix_to_face, at::Tensor bary) {
  TORCH_CHECK(attr.dim() == 3 && pix_to_face.dim() == 3 && bary.dim() == 4, "interpolate: bad ranks");
  attr = attr.contiguous();
  faces = faces.to(at::kLong).contiguous();
  pix_to_face = pix_to_face.contiguous();
  bary = bary.to(attr.scalar_type()).contiguous();
  const int64_t Ba = attr.size(0), N = attr.size(1), C = attr.size(2);
  const int64_t B = pix_to_face.size(0), HW = pix_to_face.size(1) * pix_to_face.size(2);
  TORCH_CHECK(Ba == 1 || Ba == B, "interpolate: attribute batch must be 1 or B");
  auto out = at::empty({B, pix_to_face.size(1), pix_to_face.size(2), C}, attr.options());
  AT_DISPATCH_FLOATING_TYPES(attr.scalar_type(), "interpolate_forward", [&] {
    interpolate_forward_impl<scalar_t>(attr.data_ptr<scalar_t>(), Ba, N, C, faces.data_ptr<int64_t>(),
                                       pix_to_face.data_ptr<int64_t>(), bary.data_ptr<scalar_t>(), B, HW,
                                       out.data_ptr<scalar_t>());
  });
  return out;
}

std::vector<at::Tensor> interpolate_backward(at::Tensor grad_out, at::Tensor attr, at::Tensor faces,
                                             at::Tensor pix_to_face, at::Tensor bary, bool need_attr, bool need_bary) {
  attr = attr.contiguous();
  grad_out = grad_out.to(attr.scalar_type()).contiguous();
  faces = faces.to(at::kLong).contiguous();
  pix_to_face = pix_to_face.contiguous();
  bary = bary.to(attr.scalar_type()).contiguous();
  const int64_t Ba = attr.size(0), N = attr.size(1), C = attr.size(2);
  const int64_t B = pix_to_face.size(0), HW = pix_to_face.size(1) * pix_to_face.size(2);
  auto grad_attr = need_attr ? at::zeros_like(attr) : at::Tensor();
  auto grad_bary = need_bary ? at::empty_like(bary) : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES(attr.scalar_type(), "interpolate_backward", [&] {
    interpolate_backward_impl<scalar_t>(grad_out.data_ptr<scalar_t>(), attr.data_ptr<scalar_t>(), Ba, N, C,
                                        faces.data_ptr<int64_t>(), pix_to_face.data_ptr<int64_t>(),
                                        bary.data_ptr<scalar_t>(), B, HW,
                                        need_attr ? grad_attr.data_ptr<scalar_t>() : nullptr,
                                        need_bary ? grad_bary.data_ptr<scalar_t>() : nullptr);
  });
  return {grad_attr, grad_bary};
}

// How many distinct threads one at::parallel_for over `n` unit items ran on: 1 when the kernel was
// built without OpenMP (ATen then runs the loop serially), up to at::get_num_threads() otherwise.
int64_t parallel_threads_used(int64_t n) {
  std::vector<int> used(std::max(1, at::get_num_threads()), 0);
  at::parallel_for(0, n, 1, [&](int64_t, int64_t) { used[at::get_thread_num()] = 1; });
  return std::count(used.begin(), used.end(), 1);
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("parallel_threads_used", &parallel_threads_used, "threads one at::parallel_for used (build check)");
  m.def("interpolate_forward", &interpolate_forward, "fused attribute interpolation (see rasterize.py)");
  m.def("interpolate_backward", &interpolate_backward, "backward of interpolate_forward");
  m.def("rasterize_forward", &rasterize_forward, "rig visibility pass (see rasterize_ref.py)");
  m.def("rasterize_backward", &rasterize_backward,
        "gradient of per-pixel barycentrics/depth w.r.t. screen vertices (see rasterize.py)");
}
