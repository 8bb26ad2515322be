"""The seed article's three models, written the way the article writes them.

Plain Lightning, no litpredict: no ``save_hyperparameters``, ``(x, y)`` batches in
``predict_step``, the LSTM's forward returning ``(output, state)``. The elided parts
("... CNN etc. ...") are filled in the simplest way a user would.
"""

import pytorch_lightning as pl
import torch
import torch.nn as nn


class LinearRegressionModel(pl.LightningModule):
    def __init__(self, input_dim, output_dim):
        super().__init__()
        self.linear = nn.Linear(input_dim, output_dim)

    def forward(self, x):
        return self.linear(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.mse_loss(self(x), y)

    def predict_step(self, batch, batch_idx):
        x, _ = batch  # Ignore labels during prediction
        return self.forward(x)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.01)


class ImageClassifier(pl.LightningModule):
    def __init__(self, num_classes=10):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(8 * 16 * 16, num_classes),
        )

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        images, labels = batch
        return nn.functional.cross_entropy(self(images), labels)

    def predict_step(self, batch, batch_idx):
        images, _ = batch  # Ignore labels during prediction
        predictions = self(images)  # Forward pass
        return predictions.argmax(dim=1)  # Get class predictions

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


class LSTMModel(pl.LightningModule):
    def __init__(self, input_dim, hidden_dim, output_dim):
        super().__init__()
        self.lstm = nn.LSTM(input_dim, hidden_dim, batch_first=True)
        self.head = nn.Linear(hidden_dim, output_dim)

    def forward(self, x):
        hidden, state = self.lstm(x)
        return self.head(hidden), state

    def training_step(self, batch, batch_idx):
        sequence, target = batch
        output, _ = self(sequence)
        return nn.functional.mse_loss(output, target)

    def predict_step(self, batch, batch_idx):
        sequence, _ = batch  # Ignore target sequences during prediction
        output, _ = self(sequence)  # Forward pass, get output from LSTM
        return output  # Sequence of predictions

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)
