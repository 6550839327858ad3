//! The one place where the current worker's messages arrive: each goes to the room that owns
//! what it changes.

use super::cells::{CellView, Pictures};
use super::engine::{CamView, EditedView};
use super::web::{object_url, png_blob, png_object_url};
use super::Page;
use std::sync::Arc;
use wbc_messages::{CellReport, FromWorker};

impl Page {
    /// A message from the current worker and its byte attachments.
    pub(super) fn receive(self, message: FromWorker, attachments: Vec<js_sys::Uint8Array>) {
        let bytes = |i: usize| attachments.get(i).map(|a| a.to_vec()).unwrap_or_default();
        match message {
            FromWorker::Ready(report) => self.engine.ready(report),
            FromWorker::Analysed(report) if self.stored.forget(report.id) => {}
            FromWorker::Analysed(report) => self.analysed(report, &attachments),
            FromWorker::Explained {
                id,
                attribute,
                value,
                side,
                ms,
            } => self.engine.cam.arrived(CamView {
                cell: id,
                attribute,
                value,
                heat: Arc::new(bytes(0)),
                side,
                ms,
            }),
            FromWorker::ExplainFailed { reason, .. } => self.engine.explain_failed(reason),
            FromWorker::Edited {
                id,
                edit,
                report,
                ms,
            } => self.engine.show_me.arrived(EditedView {
                cell: id,
                edit,
                image_url: attachments
                    .first()
                    .and_then(png_object_url)
                    .unwrap_or_default(),
                prediction: report.prediction,
                morphometry: report.morphometry,
                familiarity: report.familiarity,
                ms,
            }),
            FromWorker::EditFailed { reason, .. } => self.engine.edit_failed(reason),
            FromWorker::Refused { id, .. } if self.stored.forget(id) => {}
            FromWorker::Refused { id, name, reason } => {
                self.engine.refused(id);
                self.notices.refuse(name, reason);
                self.engine.start_background_work(true);
            }
            FromWorker::Crashed { id, message } => self.engine.worker_stopped(id, message),
            FromWorker::DeviceLost { reason } => self.engine.device_lost(reason),
            // The CPU worker's speed, asked for when the WebGPU worker was ready.
            FromWorker::NetworkTimes {
                attribute_ms,
                segmentation_ms,
            } => self.engine.cpu_timed(attribute_ms + segmentation_ms),
            FromWorker::Fatal { message } => self.engine.fatal(message),
        }
    }

    /// A cell came back: the engine counts it, the stored session keeps it, the cells show
    /// it. Attachments: the crop, the label map, the thumbnail, the square as the networks
    /// saw it (when it differs).
    fn analysed(self, report: CellReport, attachments: &[js_sys::Uint8Array]) {
        let image_url = attachments
            .first()
            .and_then(png_object_url)
            .unwrap_or_default();
        let thumb = attachments.get(2).and_then(png_blob);
        let thumb_url = thumb.as_ref().and_then(object_url).unwrap_or_default();
        let normalised_url = if report.normalised_image {
            attachments.get(3).and_then(png_object_url)
        } else {
            None
        };
        let labels = attachments.get(1).map(|a| a.to_vec()).unwrap_or_default();
        let timing = self.engine.answered(report.id);
        self.stored.keep_cell(&report, thumb, timing.0);
        let pictures = Pictures {
            image_url,
            thumb_url,
            normalised_url,
            labels,
        };
        let view = CellView::from_report(report, pictures, timing);
        self.cells.add(self.adaptation.adapt(view));
        self.engine.start_background_work(true);
    }
}
