//! Multinomial logistic regression, small enough to read and fitted in seconds: the
//! concept-bottleneck model (cell type from the attribute probabilities) and the measured-type
//! model (cell type from the segmentation's measurements) are both one.

/// In place: logits to probabilities.
pub fn softmax(z: &mut [f32]) {
    let m = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut s = 0.0;
    for v in z.iter_mut() {
        *v = (*v - m).exp();
        s += *v;
    }
    for v in z.iter_mut() {
        *v /= s;
    }
}

/// `weights[class] · x + biases[class]` for each class.
pub fn logits(weights: &[Vec<f32>], biases: &[f32], x: &[f32]) -> Vec<f32> {
    weights
        .iter()
        .zip(biases)
        .map(|(w, b)| b + w.iter().zip(x).map(|(w, x)| w * x).sum::<f32>())
        .collect()
}

/// Fit `classes` weight rows and biases by proximal gradient descent (full batch, FISTA
/// momentum) on the mean softmax cross-entropy plus `l1` × Σ|w| (biases are not penalised).
/// Deterministic: same data, same model. `norm_bound` bounds every input's squared norm
/// (`None`: the largest in `x`). Returns `(weights[class][input], biases)`.
pub fn fit(
    x: &[Vec<f32>],
    y: &[usize],
    classes: usize,
    l1: f32,
    iterations: usize,
    norm_bound: Option<f32>,
) -> (Vec<Vec<f32>>, Vec<f32>) {
    let k = classes;
    let d = x.first().map_or(0, Vec::len);
    let n = x.len().max(1) as f32;
    // The loss gradient is Lipschitz with L ≤ ½·(‖x‖² + 1) over the inputs (the softmax's
    // Hessian is at most ½ in norm), so 1/L is a safe step.
    let norm = norm_bound.unwrap_or_else(|| {
        x.iter()
            .map(|xi| xi.iter().map(|v| v * v).sum::<f32>())
            .fold(0.0f32, f32::max)
    });
    let step = 1.0 / (0.5 * (norm + 1.0));
    let mut w = vec![vec![0.0f32; d]; k];
    let mut b = vec![0.0f32; k];
    let (mut w_prev, mut b_prev) = (w.clone(), b.clone());
    let mut t = 1.0f32;
    for _ in 0..iterations {
        let t_next = (1.0 + (1.0 + 4.0 * t * t).sqrt()) / 2.0;
        let momentum = (t - 1.0) / t_next;
        // Look-ahead point.
        let wy: Vec<Vec<f32>> = w
            .iter()
            .zip(&w_prev)
            .map(|(a, p)| {
                a.iter()
                    .zip(p)
                    .map(|(a, p)| a + momentum * (a - p))
                    .collect()
            })
            .collect();
        let by: Vec<f32> = b
            .iter()
            .zip(&b_prev)
            .map(|(a, p)| a + momentum * (a - p))
            .collect();
        let mut gw = vec![vec![0.0f32; d]; k];
        let mut gb = vec![0.0f32; k];
        for (xi, &yi) in x.iter().zip(y) {
            let mut p = logits(&wy, &by, xi);
            softmax(&mut p);
            for c in 0..k {
                let g = p[c] - if c == yi { 1.0 } else { 0.0 };
                gb[c] += g;
                for j in 0..d {
                    gw[c][j] += g * xi[j];
                }
            }
        }
        w_prev = std::mem::take(&mut w);
        b_prev = std::mem::take(&mut b);
        w = wy
            .iter()
            .zip(&gw)
            .map(|(row, g)| {
                row.iter()
                    .zip(g)
                    .map(|(v, g)| {
                        let u = v - step * g / n;
                        // Soft-thresholding: the L1 proximal step.
                        u.signum() * (u.abs() - step * l1).max(0.0)
                    })
                    .collect()
            })
            .collect();
        b = by.iter().zip(&gb).map(|(v, g)| v - step * g / n).collect();
        t = t_next;
    }
    (w, b)
}
