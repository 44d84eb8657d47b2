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
constexpr int64_t kBandRows = 8;

struct Triangle {
  double x0, y0, z0, x1, y1, z1, x2, y2, z2, area;
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
  if (!t.valid) { t.j0 = 0; t.j1 = -1; t.i0 = 0; t.i1 = -1; return t; }
  const double xmin = std::min(t.x0, std::min(t.x1, t.x2)), xmax = std::max(t.x0, std::max(t.x1, t.x2));
  const double ymin = std::min(t.y0, std::min(t.y1, t.y2)), ymax = std::max(t.y0, std::max(t.y1, t.y2));
  t.j0 = static_cast<int64_t>(clampd(std::floor(xmin - 0.5), 0.0, double(W - 1)));
  t.j1 = static_cast<int64_t>(clampd(std::ceil(xmax - 0.5), -1.0, double(W - 1)));
  t.i0 = static_cast<int64_t>(clampd(std::floor(ymin - 0.5), 0.0, double(H - 1)));
  t.i1 = static_cast<int64_t>(clampd(std::ceil(ymax - 0.5), -1.0, double(H - 1)));
  if (t.j1 < t.j0 || t.i1 < t.i0) t.valid = false;
  return t;
}

void rasterize_image(const double* S, const int64_t* faces, int64_t F, int64_t H, int64_t W, bool perspective,
                     bool cull, double near, int64_t* p2f, double* bary, double* depth) {
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
  at::parallel_for(0, n_bands, 1, [&](int64_t bs, int64_t be) {
    for (int64_t band = bs; band < be; ++band) {
      const int64_t r0 = band * kBandRows, r1 = std::min(H - 1, r0 + kBandRows - 1);
      for (int64_t k = start[band]; k < start[band + 1]; ++k) {
        const int64_t f = list[k];
        const Triangle& t = tris[f];
        const int64_t ia = std::max(t.i0, r0), ib = std::min(t.i1, r1);
        for (int64_t i = ia; i <= ib; ++i) {
          const double py = double(i) + 0.5;
          for (int64_t j = t.j0; j <= t.j1; ++j) {
            const double px = double(j) + 0.5;
            const double b0 = ((t.x1 - px) * (t.y2 - py) - (t.x2 - px) * (t.y1 - py)) / t.area;
            if (!(b0 >= 0)) continue;
            const double b1 = ((t.x2 - px) * (t.y0 - py) - (t.x0 - px) * (t.y2 - py)) / t.area;
            if (!(b1 >= 0)) continue;
            const double b2 = ((t.x0 - px) * (t.y1 - py) - (t.x1 - px) * (t.y0 - py)) / t.area;
            if (!(b2 >= 0)) continue;
            double d, c0, c1, c2;
            if (perspective) {
              const double q0 = b0 / t.z0, q1 = b1 / t.z1, q2 = b2 / t.z2;
              d = 1.0 / (q0 + q1 + q2);
              c0 = q0 * d; c1 = q1 * d; c2 = q2 * d;
            } else {
              d = b0 * t.z0 + b1 * t.z1 + b2 * t.z2;
              c0 = b0; c1 = b1; c2 = b2;
            }
            const int64_t p = i * W + j;
            // Lists are in increasing face order, so on equal depth the earlier (smaller) id stays.
            if (d < depth[p]) {
              depth[p] = d;
              p2f[p] = f;
              bary[3 * p] = c0; bary[3 * p + 1] = c1; bary[3 * p + 2] = c2;
            }
          }
        }
      }
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
  screen = screen.to(at::kCPU, at::kDouble).contiguous();
  faces = faces.to(at::kCPU, at::kLong).contiguous();
  const int64_t B = screen.size(0), V = screen.size(1), F = faces.size(0);
  auto p2f = at::full({B, height, width}, -1, at::kLong);
  auto bary = at::zeros({B, height, width, 3}, at::kDouble);
  auto depth = at::full({B, height, width}, std::numeric_limits<double>::infinity(), at::kDouble);
  const int64_t* fp = faces.data_ptr<int64_t>();
  for (int64_t f = 0; f < 3 * F; ++f) TORCH_CHECK(fp[f] >= 0 && fp[f] < V, "face index out of range");
  const int64_t n_pix = height * width;
  for (int64_t b = 0; b < B; ++b) {
    rasterize_image(screen.data_ptr<double>() + b * V * 3, fp, F, height, width, perspective, cull_backfaces, near,
                    p2f.data_ptr<int64_t>() + b * n_pix, bary.data_ptr<double>() + b * n_pix * 3,
                    depth.data_ptr<double>() + b * n_pix);
  }
  return {p2f, bary, depth};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("rasterize_forward", &rasterize_forward, "rig visibility pass (see rasterize_ref.py)");
}
